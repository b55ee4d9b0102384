import Foundation
import Intake
import Rentals
import Synchronization
import Testing
@testable import Allocator
@testable import Spool

/// The daemons under systemd's protocols and under restarts and crashes.
@Suite(.serialized) struct DaemonTests {
    /// A fake systemd: an `AF_UNIX` datagram socket that collects sd_notify messages.
    final class NotifyListener: @unchecked Sendable {
        let path: String
        let descriptor: Int32

        init(path: String) throws {
            self.path = path
            descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            try #require(bound == 0)
        }

        deinit { close(descriptor) }

        /// Messages received within `seconds`, until `until` matches one.
        func receive(for seconds: Double, until: (String) -> Bool = { _ in false }) -> [String] {
            var messages: [String] = []
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 100) > 0 else { continue }
                var buffer = [UInt8](repeating: 0, count: 4096)
                let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { continue }
                let message = String(decoding: buffer[..<count], as: UTF8.self)
                messages.append(message)
                if until(message) { break }
            }
            return messages
        }
    }

    @Test func daemonsSpeakTheSdNotifyProtocol() throws {
        let system = try SystemFixture()
        for daemon in ["spool-allocator", "spool-notifier"] {
            let listener = try NotifyListener(path: system.directory.sub("\(daemon).notify"))
            try system.start(daemon, environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "400000"])
            let startup = listener.receive(for: 15) { $0.contains("READY=1") }
            #expect(startup.contains { $0.hasPrefix("READY=1") }, "\(daemon): \(startup)")
            let pings = listener.receive(for: 1.2)
            #expect(pings.filter { $0 == "WATCHDOG=1" }.count >= 3, "\(daemon) pings the watchdog every 200 ms: \(pings)")
            #expect(system.stop(daemon) == 0, "a clean stop exits 0")
            #expect(listener.receive(for: 1).contains { $0.contains("STOPPING=1") })
        }
    }

    /// Restart the allocator (SIGTERM) and crash it (SIGKILL) while requests keep coming:
    /// nothing is lost, nothing decided twice, no unit double-booked, every customer notified
    /// exactly once.
    @Test func restartsAndCrashesUnderLoadLoseAndDuplicateNothing() throws {
        let system = try SystemFixture(settings: ["breaker_high_water": "100000", "breaker_low_water": "10"])
        try system.ctl(["units", "import", try unitsFile(system)])
        try system.start("spool-allocator", name: "allocator", environment: ["SWIFT_BACKTRACE": "enable=no"])
        try system.start("spool-notifier", environment: ["SWIFT_BACKTRACE": "enable=no"])

        let ids = Mutex<[String]>([])
        let done = Atomic<Bool>(false)
        let producer = Thread {
            var index = 0
            while !done.load(ordering: .relaxed) && index < 240 {
                let day = CalendarDay(iso: "2099-01-01")!.adding(days: (index * 7) % 300)
                if let result = try? system.ctl("submit", "--customer", "r\(index)", "--contact", "+4915112345678", "--size",
                                                ["S", "M"][index % 2], "--from", "\(day)", "--to", "\(day.adding(days: 10 + index % 20))", "--json"),
                   result.status == 0,
                   let object = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
                   let id = object["id"] as? String {
                    ids.withLock { $0.append(id) }
                }
                index += 1
            }
            done.store(true, ordering: .relaxed)
        }
        producer.start()
        for round in 0..<6 {
            usleep(400_000)
            if round % 2 == 0 {
                system.stop("allocator")  // graceful: finishes the command in hand
            } else {
                system.crash("allocator")  // crash: the lease holder is gone
                system.crash("spool-notifier")
                try system.start("spool-notifier", environment: ["SWIFT_BACKTRACE": "enable=no"])
            }
            try system.start("spool-allocator", name: "allocator", environment: ["SWIFT_BACKTRACE": "enable=no"])
        }
        while !done.load(ordering: .relaxed) { usleep(50_000) }
        let submitted = ids.withLock { $0 }
        #expect(submitted.count == 240)

        let spool = try Spool(path: system.spool)
        let index = try StatusIndex(path: try StatusIndex.defaultPath(in: spool))
        let settled = system.eventually(90) {
            let rows = (try? index.dump()) ?? []
            return rows.count == submitted.count && rows.allSatisfy {
                guard let status = RentalStatus(document: $0.document) else { return false }
                return [.confirmed, .rejected].contains(status.state) && status.notifiedAt != nil
            }
        }
        #expect(settled)
        let store = try AllocatorStore(spool: spool)
        let assignments = try store.assignments()
        for (unit, held) in Dictionary(grouping: assignments, by: \.unit) {
            let periods = held.map(\.period).sorted { $0.start < $1.start }
            for (earlier, later) in zip(periods, periods.dropFirst()) { #expect(!earlier.overlaps(later), "unit \(unit)") }
        }
        #expect(Set(assignments.map(\.request)).count == assignments.count, "no request holds two units")
        // Exactly one message per request, whatever was redelivered.
        for id in submitted.prefix(240) {
            let customer = try #require(try index.entity(id).flatMap { RentalStatus(document: $0.document) }).customer
            #expect(system.mailbox(customer).count == 1, "customer \(customer): \(system.mailbox(customer))")
        }
    }

    private func unitsFile(_ system: SystemFixture) throws -> String {
        let path = system.directory.sub("units.csv")
        let lines = (0..<12).map { "R-\($0),\($0 % 2 == 0 ? "S" : "M"),Site" }
        try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }
}
