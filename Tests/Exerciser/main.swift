// A driver that the crash and concurrency tests run as separate processes. Not installed.
//
//   spool-exerciser enqueue-loop SPOOL QUEUE        enqueue forever; print each id once durable
//   spool-exerciser consume SPOOL QUEUE MARKS IDLE-MS
//                                                   claim and ack until idle; create MARKS/<id>
//                                                   with O_EXCL per item (exit 3 on a duplicate)
//   spool-exerciser hold SPOOL QUEUE                claim one item, print its id, sleep forever
//   spool-exerciser journal-append SPOOL COUNT TAG  append COUNT records "TAG-<n>", durably
//   spool-exerciser journal-rotate SPOOL            seal the live journal segment now (as an
//                                                   appender does at 4 MiB or after an hour)
#if canImport(Glibc)
import Glibc
#endif
import Spool

let arguments = CommandLine.arguments

/// Writes one whole line with a single write(2), unbuffered: a process killed right after an
/// enqueue returned has still reported it.
func say(_ line: String, to descriptor: Int32 = 1) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
}

func fail(_ message: String, code: Int32 = 1) -> Never {
    say("spool-exerciser: \(message)", to: 2)
    exit(code)
}

guard arguments.count >= 3 else { fail("usage: see the comment in Tests/Exerciser/main.swift", code: 64) }

do {
    let spool = try Spool(path: arguments[2], create: true)
    switch arguments[1] {
    case "enqueue-loop":
        let queue = try spool.queue(QueueName(arguments[3]))
        var counter = 0
        while true {
            counter += 1
            let size = Int.random(in: 0...4096)
            let payload = Array("item-\(counter)-".utf8) + [UInt8](repeating: UInt8(counter % 251), count: size)
            let id = try queue.enqueue(payload)
            say("\(id) \(payload.count) \(CRC32Check.hex(payload))")
        }
    case "consume":
        let queue = try spool.queue(QueueName(arguments[3]))
        let marks = arguments[4]
        let idle = Duration.milliseconds(Int(arguments[5]) ?? 2000)
        let watcher = try QueueWatcher(queue: queue)
        var lastWork = ContinuousClock.now
        while ContinuousClock.now - lastWork < idle {
            guard let item = try queue.claimNext(lease: .seconds(60)) else {
                watcher.wait(timeout: .milliseconds(50))
                continue
            }
            let fd = open("\(marks)/\(item.id)", O_WRONLY | O_CREAT | O_EXCL, 0o644)
            guard fd >= 0 else { fail("DUPLICATE \(item.id)", code: 3) }
            close(fd)
            try queue.acknowledge(item)
            say(item.id.rawValue)
            lastWork = .now
        }
    case "hold":
        let queue = try spool.queue(QueueName(arguments[3]))
        guard let item = try queue.claimNext(lease: .seconds(3600)) else { fail("nothing to claim") }
        say(item.id.rawValue)
        while true { sleep(60) }
    case "journal-append":
        let journal = try Journal(spool: spool)
        let count = Int(arguments[3]) ?? 0
        for index in 0..<count {
            try journal.append([Array("\(arguments[4])-\(index)".utf8)], durability: .durable)
        }
    case "journal-rotate":
        try Journal(spool: spool).rotate()
    default:
        fail("unknown command \(arguments[1])", code: 64)
    }
} catch {
    fail("\(error)", code: 74)
}

enum CRC32Check {
    static func hex(_ bytes: [UInt8]) -> String {
        var crc: UInt32 = 0xffff_ffff
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xedb8_8320 & (0 &- (crc & 1))) }
        }
        return String(crc ^ 0xffff_ffff, radix: 16)
    }
}
