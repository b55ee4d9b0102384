import Foundation
import Rentals
import Synchronization
import Testing
@testable import Allocator
@testable import Spool

/// Two allocator processes on one spool, as `spool-allocator.service` and an extra
/// `spool-allocator@2.service` run them: they take one stream of requests and cancels from the
/// same queue while one of them is killed (SIGKILL) and started again. Every request is decided
/// exactly once (one confirmation or one rejection, never both; a cancel before the decision
/// leaves only the cancellation), no unit is booked twice for a day, both processes decide, and
/// the live index equals a replay of the journal.
@Suite(.serialized) struct AllocatorInstancesTests {
    @Test func twoAllocatorsDecideOneStreamOnceEachThroughAKill() throws {
        let system = try SystemFixture(settings: ["breaker_high_water": "100000", "breaker_low_water": "10"])
        try system.addUnits((0..<12).map { ("U\($0)", "M") })
        try system.start("spool-allocator", name: "first")
        try system.start("spool-allocator", name: "second")
        try system.start("spool-notifier")

        var random = SeededGenerator(seed: 2)
        let base = CalendarDay(iso: "2099-01-01")!
        let count = 150
        let forms: [[String]] = (0..<count).map { index in
            let start = base.adding(days: Int.random(in: 0..<120, using: &random))
            let end = start.adding(days: Int.random(in: 7...60, using: &random))
            return ["submit", "--customer", "c\(index % 6)", "--contact", "c\(index % 6)@example.com", "--size", "M",
                    "--from", "\(start)", "--to", "\(end)", "--json"]
        }
        let ids = Mutex<[Int: String]>([:])
        let cancelled = Mutex<Set<String>>([])
        func submit(_ range: Range<Int>) {
            DispatchQueue.concurrentPerform(iterations: 4) { lane in
                for index in stride(from: range.lowerBound + lane, to: range.upperBound, by: 4) {
                    guard let result = try? system.ctl(forms[index]), result.status == 0,
                          let object = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
                          let id = object["id"] as? String else { continue }
                    ids.withLock { $0[index] = id }
                    // Every tenth request is withdrawn at once: its cancel races its allocation.
                    if index % 10 == 0, (try? system.ctl("cancel", id))?.status == 0 {
                        cancelled.withLock { _ = $0.insert(id) }
                    }
                }
            }
        }
        submit(0..<50)
        // The worst moment for a process that holds claims: killed mid-stream; its leases are
        // reclaimed by the other one (the holder is provably gone) and a new process joins.
        system.crash("first")
        submit(50..<100)
        try system.start("spool-allocator", name: "third")
        submit(100..<count)
        let submitted = ids.withLock { $0 }
        #expect(submitted.count == count, "every submit acknowledged")

        let spool = try Spool(path: system.spool)
        let index = try StatusIndex(path: try StatusIndex.defaultPath(in: spool))
        let allocation = try spool.queue(.allocation), notifications = try spool.queue(.notifications)
        func settled() -> Bool {
            guard let rows = try? index.dump(), rows.count == count else { return false }
            return rows.allSatisfy { row in
                guard let status = RentalStatus(document: row.document) else { return false }
                return [.confirmed, .rejected, .cancelled].contains(status.state) && status.notifiedAt != nil
            }
        }
        let done = system.eventually(120) {
            settled() && (try? allocation.counts()) == QueueCounts() && (try? notifications.counts()) == QueueCounts() && settled()
        }
        #expect(done, "every request decided and notified, every queue item acknowledged")

        // Decided once: the messages each request's customer got.
        let statuses = Dictionary(uniqueKeysWithValues: try index.dump().compactMap { RentalStatus(document: $0.document) }.map { ($0.id, $0) })
        for (number, id) in submitted {
            let mail = system.mailbox("c\(number % 6)").filter { $0.hasPrefix("\(id)-") }
            let decisions = mail.filter { $0.hasSuffix("-confirmation") || $0.hasSuffix("-rejection") }
            let state = statuses[id]?.state
            if state == .cancelled {
                #expect(cancelled.withLock { $0.contains(id) }, "\(id) cancelled without a cancel")
                #expect(decisions.count <= 1 && mail.contains("\(id)-cancellation"), "\(id): \(mail)")
            } else {
                #expect(decisions.count == 1, "\(id) (\(String(describing: state))) decided \(decisions.count) times: \(mail)")
                #expect((state == .confirmed) == (decisions.first?.hasSuffix("-confirmation") == true), "\(id): \(String(describing: state)) but \(mail)")
            }
        }

        // No unit booked twice for a day; the index's confirmed requests are the store's holdings.
        let assignments = try AllocatorStore(spool: spool).assignments()
        for (unit, held) in Dictionary(grouping: assignments, by: \.unit) {
            let periods = held.map(\.period).sorted { $0.start < $1.start }
            for (earlier, later) in zip(periods, periods.dropFirst()) {
                #expect(!earlier.overlaps(later), "unit \(unit) booked twice: \(earlier) and \(later)")
            }
        }
        #expect(Set(statuses.values.filter { $0.state == .confirmed }.map(\.id)) == Set(assignments.map(\.request)))
        #expect(statuses.values.contains { $0.state == .rejected } && statuses.values.contains { $0.state == .confirmed },
                "the stream exercises both outcomes")

        // Both processes that ran to the end decided requests.
        for name in ["second", "third"] {
            let log = system.stopReporting(name).errors
            #expect(log.contains("unit assigned") || log.contains("request rejected"), "allocator \(name) decided nothing")
        }
        system.stop("spool-notifier")

        // CQRS: the live index equals a replay of the journal.
        let rebuilt = try StatusIndex(path: system.directory.sub("rebuilt.sqlite"))
        try rebuilt.rebuild(from: Journal(spool: spool))
        #expect(try rebuilt.dump() == (try index.dump()))
    }
}
