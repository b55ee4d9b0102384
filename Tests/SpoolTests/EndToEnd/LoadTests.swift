import Foundation
import Intake
import Rentals
import Synchronization
import Testing
@testable import Allocator
@testable import Spool

/// Many requests, few units, two allocator processes: the invariants hold.
@Suite(.serialized) struct LoadTests {
    @Test func fiveHundredRequestsForFiftyUnitsNeverDoubleBook() throws {
        let system = try SystemFixture(settings: ["breaker_high_water": "100000", "breaker_low_water": "10"])
        let sizes = ["S", "M", "L", "XL"]
        try system.ctl(["units", "import", try unitsFile(system, count: 50, sizes: sizes)])

        var random = SeededGenerator(seed: 500)
        let base = CalendarDay(iso: "2099-01-01")!
        let forms: [[String]] = (0..<500).map { index in
            let start = base.adding(days: Int.random(in: 0..<365, using: &random))
            let end = start.adding(days: Int.random(in: 7...120, using: &random))
            return ["submit", "--customer", "load-\(index % 37)", "--contact", "+4915112345678",
                    "--size", sizes.randomElement(using: &random)!, "--from", "\(start)", "--to", "\(end)", "--json"]
        }
        let ids = Mutex<[String]>([])
        func submitAll(_ range: Range<Int>) {
            DispatchQueue.concurrentPerform(iterations: 4) { lane in
                for index in stride(from: range.lowerBound + lane, to: range.upperBound, by: 4) {
                    guard let result = try? system.ctl(forms[index]), result.status == 0,
                          let object = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
                          let id = object["id"] as? String else { continue }
                    ids.withLock { $0.append(id) }
                }
            }
        }
        // Half while the daemons are down (a backlog for the pools to grow on), half while
        // two allocator processes and the notifier work.
        submitAll(0..<250)
        try system.start("spool-allocator", name: "allocator-1")
        try system.start("spool-allocator", name: "allocator-2")
        try system.start("spool-notifier")
        submitAll(250..<500)
        let submitted = ids.withLock { $0 }
        #expect(submitted.count == 500)

        let spool = try Spool(path: system.spool)
        let index = try StatusIndex(path: try StatusIndex.defaultPath(in: spool))
        // Settled means every source agrees, not just the index: a daemon records the status
        // before it acknowledges the queue item, so a terminal, notified index row can be seen
        // while its allocation or notification item is still active. Wait for both queues to be
        // empty too (never a fixed sleep), and check the rows again after the queues drained.
        let allocation = try spool.queue(.allocation), notifications = try spool.queue(.notifications)
        func allNotified() -> Bool {
            guard let rows = try? index.dump(), rows.count == 500 else { return false }
            return rows.allSatisfy { row in
                guard let status = RentalStatus(document: row.document) else { return false }
                return (status.state == .confirmed || status.state == .rejected) && status.notifiedAt != nil
            }
        }
        let settled = system.eventually(120) {
            allNotified() && (try? allocation.counts()) == QueueCounts() && (try? notifications.counts()) == QueueCounts()
                && allNotified()
        }
        #expect(settled, "every request reaches a terminal, notified state and every queue item is acknowledged")

        // No unit is assigned to overlapping periods.
        let store = try AllocatorStore(spool: spool)
        let assignments = try store.assignments()
        for (unit, held) in Dictionary(grouping: assignments, by: \.unit) {
            let periods = held.map(\.period).sorted { $0.start < $1.start }
            for (earlier, later) in zip(periods, periods.dropFirst()) {
                #expect(!earlier.overlaps(later), "unit \(unit) double-booked: \(earlier) and \(later)")
            }
        }
        let rows = try index.dump().compactMap { RentalStatus(document: $0.document) }
        #expect(Set(rows.filter { $0.state == .confirmed }.map(\.id)) == Set(assignments.map(\.request)))
        #expect(rows.filter { $0.state == .confirmed }.count > 100 && rows.filter { $0.state == .rejected }.count > 10,
                "the load exercises both outcomes")

        // CQRS: the live index equals a replay of the journal.
        let rebuilt = try StatusIndex(path: system.directory.sub("rebuilt.sqlite"))
        try rebuilt.rebuild(from: Journal(spool: spool))
        #expect(try rebuilt.dump() == (try index.dump()))
        #expect(try spool.queue(.allocation).counts() == QueueCounts())
        #expect(try spool.queue(.notifications).counts() == QueueCounts())
        #expect(filesBelow("\(system.spool)/corrupt").isEmpty)

        // The worker pools grew with the backlog, and every log line about a request names it.
        let log = system.stopReporting("allocator-1").errors + system.stopReporting("allocator-2").errors
        #expect(log.contains("scaling workers"), "the allocator pool grew with the backlog")
        let decisions = log.split(separator: "\n").filter { $0.contains("unit assigned") || $0.contains("request rejected") }
        #expect(decisions.count == 500)
        #expect(decisions.allSatisfy { $0.contains("request=") })
    }

    private func unitsFile(_ system: SystemFixture, count: Int, sizes: [String]) throws -> String {
        let path = system.directory.sub("units.csv")
        let lines = ["id,size,site"] + (0..<count).map { "U-\($0),\(sizes[$0 % sizes.count]),Site \($0 % 3)" }
        try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }
}
