// spool-bench: measures the spool's disk work against a raw syscall loop doing the same disk
// work in the same run, and prints ratios (absolute times on a shared machine are noisy; fsync
// here switches between ~0.1 ms and ~4 ms on its own, so only same-run ratios mean anything).
//
//   spool-bench            full run (a few minutes)
//   spool-bench --quick    small counts, for CI: proves the benchmark runs
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import Spool

// `spool-bench TOOL ARGS…`: the set-up and in-process probes of scripts/bench (Tools.swift).
if CommandLine.arguments.count > 1, !CommandLine.arguments[1].hasPrefix("-") {
    exit(Tools.run(CommandLine.arguments[1], Array(CommandLine.arguments.dropFirst(2))))
}

let quick = CommandLine.arguments.contains("--quick")
let count = quick ? 50 : 1000
let backlog = quick ? 1_000 : 30_000
let payload = [UInt8](repeating: 0x61, count: 256)

func scratch(_ label: String) -> String {
    var template = Array("/var/tmp/spool-bench-\(label).XXXXXX".utf8CString)
    return String(cString: mkdtemp(&template)!)
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

struct Row {
    var name: String
    var operations: Int
    var ours: Double
    var baseline: Double?
}
var rows: [Row] = []

func check(_ result: Int32, _ what: String) {
    if result < 0 { fatalError("\(what): \(String(cString: strerror(errno)))") }
}

// MARK: Raw baselines: the same system calls, no spool logic.

func rawEnqueue(_ root: String, _ n: Int) -> Double {
    mkdir("\(root)/tmp", 0o755)
    for bucket in 0..<256 { mkdir("\(root)/b\(bucket)", 0o755) }
    let tmp = open("\(root)/tmp", O_RDONLY | O_DIRECTORY)
    var buckets: [Int32] = []
    for bucket in 0..<256 { buckets.append(open("\(root)/b\(bucket)", O_RDONLY | O_DIRECTORY)) }
    defer { close(tmp); buckets.forEach { close($0) } }
    return seconds {
        for index in 0..<n {
            let fd = openat(tmp, "i\(index)", O_WRONLY | O_CREAT | O_EXCL, 0o640)
            check(fd, "open")
            _ = payload.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            check(fsync(fd), "fsync")
            close(fd)
            let bucket = buckets[index % 256]
            check(renameat(tmp, "i\(index)", bucket, "i\(index)"), "rename")
            check(fsync(bucket), "fsync dir")
        }
    }
}

func rawClaimAck(_ root: String, _ n: Int) -> Double {
    mkdir("\(root)/active", 0o755)
    let active = open("\(root)/active", O_RDONLY | O_DIRECTORY)
    var buckets: [Int32] = []
    for bucket in 0..<256 { buckets.append(open("\(root)/b\(bucket)", O_RDONLY | O_DIRECTORY)) }
    defer { close(active); buckets.forEach { close($0) } }
    var buffer = [UInt8](repeating: 0, count: 4096)
    return seconds {
        for index in 0..<n {
            check(renameat(buckets[index % 256], "i\(index)", active, "i\(index)"), "rename")
            let fd = openat(active, "i\(index)", O_RDONLY)
            _ = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            close(fd)
            check(unlinkat(active, "i\(index)", 0), "unlink")
            check(fsync(active), "fsync dir")
        }
    }
}

func rawAppend(_ root: String, _ n: Int, group: Int) -> Double {
    let fd = open("\(root)/log", O_WRONLY | O_CREAT | O_APPEND, 0o640)
    defer { close(fd) }
    let frame = [UInt8](repeating: 0x62, count: 8 + 200)
    return seconds {
        for index in 0..<n {
            _ = frame.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if (index + 1) % group == 0 { check(fsync(fd), "fsync") }
        }
    }
}

// MARK: The spool's operations.

func spoolEnqueue(_ queue: Queue, _ n: Int) throws -> Double {
    try seconds { for _ in 0..<n { try queue.enqueue(payload) } }
}

func spoolClaimAck(_ queue: Queue, _ n: Int) throws -> Double {
    try seconds {
        for _ in 0..<n {
            guard let item = try queue.claimNext(lease: .seconds(60)) else { fatalError("queue ran dry") }
            try queue.acknowledge(item)
        }
    }
}

func spoolAppend(_ journal: Journal, _ n: Int, group: Int) throws -> Double {
    let record = [UInt8](repeating: 0x62, count: 200)
    return try seconds {
        var batch: [[UInt8]] = []
        for _ in 0..<n {
            batch.append(record)
            if batch.count == group {
                try journal.append(batch, durability: .durable)
                batch.removeAll(keepingCapacity: true)
            }
        }
    }
}

/// Writes `n` items in the documented format without fsync (set-up for the backlog runs).
func seedBacklog(_ spool: Spool, _ queue: Queue, _ n: Int) throws {
    for bucket in 0..<256 { mkdir("\(spool.path)/queues/\(queue.name)/ready/\(String(format: "%02x", bucket))", 0o770) }
    for index in 0..<n {
        let id = ItemID("seed\(String(format: "%08d", index))")!
        let header = "spool-item 1\nid \(id)\nenqueued-at 0\nlength \(payload.count)\ncrc32 \(String(format: "%08x", crc(payload)))\n\n"
        let path = "\(spool.path)/queues/\(queue.name)/ready/\(id.bucket)/\(id).0.0"
        _ = FileManager.default.createFile(atPath: path, contents: Data(Array(header.utf8) + payload))
    }
}

func crc(_ bytes: [UInt8]) -> UInt32 {
    var value: UInt32 = 0xffff_ffff
    for byte in bytes {
        value ^= UInt32(byte)
        for _ in 0..<8 { value = (value >> 1) ^ (0xedb8_8320 & (0 &- (value & 1))) }
    }
    return value ^ 0xffff_ffff
}

// MARK: Run

let raw = scratch("raw"), ours = scratch("spool")
defer { try? FileManager.default.removeItem(atPath: raw); try? FileManager.default.removeItem(atPath: ours) }
let spool = try Spool(path: ours + "/spool", create: true)
let queue = try spool.queue(QueueName("bench"))

// Baseline and ours back to back, so both see the same fsync regime.
mkdir(raw + "/q", 0o755)
let enqueueRaw = rawEnqueue(raw + "/q", count)
let enqueueOurs = try spoolEnqueue(queue, count)
let claimRaw = rawClaimAck(raw + "/q", count)
let claimOurs = try spoolClaimAck(queue, count)
rows.append(Row(name: "enqueue (durable, 256 B)", operations: count, ours: enqueueOurs, baseline: enqueueRaw))
rows.append(Row(name: "claim + acknowledge", operations: count, ours: claimOurs, baseline: claimRaw))

let journal = try Journal(spool: spool)
for group in [1, 100] {
    let n = group == 1 ? count : count * 10
    let rawTime = rawAppend(raw, n, group: group)
    let ourTime = try spoolAppend(journal, n, group: group)
    rows.append(Row(name: "journal append, \(group) per fsync", operations: n, ours: ourTime, baseline: rawTime))
}
var recordsRead = 0
let readTime = try seconds { try journal.read { _ in recordsRead += 1 } }
rows.append(Row(name: "journal read (zlib segments)", operations: recordsRead, ours: readTime, baseline: nil))

let index = try StatusIndex(path: ours + "/index.sqlite")
let events = (0..<count * 5).map { IndexEvent(entity: "e\($0 % count)", version: Int64($0), state: "s", at: Int64($0), keys: ["customer": "c\($0 % 97)"], document: "{}") }
// Baseline: the same rows written by plain INSERT OR REPLACE through GRDB, same batching.
let plain = try DatabasePool(path: raw + "/plain.sqlite")
try plain.write { try $0.execute(sql: "CREATE TABLE entity (id TEXT PRIMARY KEY, version INTEGER, state TEXT, updated_at INTEGER, keys TEXT, document TEXT)") }
let plainTime = try seconds {
    for start in stride(from: 0, to: events.count, by: 100) {
        try plain.write { db in
            for event in events[start..<min(start + 100, events.count)] {
                try db.execute(sql: "INSERT OR REPLACE INTO entity VALUES (?, ?, ?, ?, ?, ?)",
                               arguments: [event.entity, event.version, event.state, event.at, "{}", event.document])
            }
        }
    }
}
let indexTime = try seconds { for start in stride(from: 0, to: events.count, by: 100) { try index.apply(Array(events[start..<min(start + 100, events.count)])) } }
rows.append(Row(name: "index apply (100 per transaction)", operations: events.count, ours: indexTime, baseline: plainTime))

// Claim cost with a large backlog, against the same with a small one.
let small = try spool.queue(QueueName("small")), large = try spool.queue(QueueName("large"))
try seedBacklog(spool, small, 512)
try seedBacklog(spool, large, backlog)
// Alternate small and large in chunks so both see the same fsync regime.
let probe = min(count, 500), chunk = 25
var smallClaim = 0.0, largeClaim = 0.0, smallEnqueue = 0.0, largeEnqueue = 0.0
for _ in 0..<(probe / chunk) {
    smallClaim += try spoolClaimAck(small, chunk)
    largeClaim += try spoolClaimAck(large, chunk)
    smallEnqueue += try spoolEnqueue(small, chunk)
    largeEnqueue += try spoolEnqueue(large, chunk)
}
rows.append(Row(name: "claim + ack at backlog \(backlog) vs 512", operations: probe, ours: largeClaim, baseline: smallClaim))
rows.append(Row(name: "enqueue at backlog \(backlog) vs 512", operations: probe, ours: largeEnqueue, baseline: smallEnqueue))

print("spool-bench \(quick ? "--quick" : "(full)"): \(count) operations; fsync regime varies, read the ratios")
print("")
let header = ["benchmark", "ops", "ours ops/s", "baseline ops/s", "time ratio ours/baseline"]
var table = [header]
for row in rows {
    let oursRate = Double(row.operations) / row.ours
    let base = row.baseline.map { String(format: "%.0f", Double(row.operations) / $0) } ?? "-"
    let ratio = row.baseline.map { String(format: "%.2f", row.ours / $0) } ?? "-"
    table.append([row.name, "\(row.operations)", String(format: "%.0f", oursRate), base, ratio])
}
let widths = (0..<header.count).map { column in table.map { $0[column].count }.max()! }
for line in table {
    print(line.enumerated().map { $0.offset == 0 ? $0.element.padding(toLength: widths[0], withPad: " ", startingAt: 0)
        : String(repeating: " ", count: widths[$0.offset] - $0.element.count) + $0.element }.joined(separator: "  "))
}
