import Foundation
import Intake
import Rentals
import Testing
@testable import Allocator
@testable import Spool

/// `spoolctl submit --batch` through the real executables: the front door, the allocator and
/// the notifier as separate processes.
@Suite(.serialized) struct BatchEndToEndTests {
    static func line(_ customer: String, size: String = "S", from: String = "2099-01-01", months: Int = 1) -> String {
        #"{"customer":"\#(customer)","contact":"\#(customer)@example.com","size":"\#(size)","from":"\#(from)","months":\#(months)}"#
    }

    static func write(_ lines: [String], to path: String, separator: String = "\n", finalNewline: Bool = true) throws {
        try Data((lines.joined(separator: separator) + (finalNewline ? separator : "")).utf8).write(to: URL(fileURLWithPath: path))
    }

    static func results(_ output: String) throws -> [[String: Any]] {
        try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]])
    }

    static func addUnits(_ system: SystemFixture, count: Int, size: String = "S") throws {
        let path = system.directory.sub("units-\(size).csv")
        try write((1...count).map { "\(size)-\($0),\(size),Site" }, to: path)
        let result = try system.ctl("units", "import", path)
        try #require(result.status == 0, "\(result.errors)")
    }

    /// The statuses of `ids` from the index, once every one is decided and notified (or nil
    /// after `seconds`).
    static func settled(_ system: SystemFixture, _ ids: [String], seconds: Double) throws -> [String: RentalStatus]? {
        let index = try StatusIndex(path: try StatusIndex.defaultPath(in: try Spool(path: system.spool)))
        var statuses: [String: RentalStatus] = [:]
        let done = system.eventually(seconds) {
            statuses = [:]
            for row in (try? index.dump()) ?? [] { statuses[row.entity] = RentalStatus(document: row.document) }
            return ids.allSatisfy { id in
                guard let status = statuses[id] else { return false }
                return [.confirmed, .rejected, .cancelled].contains(status.state) && status.notifiedAt != nil
            }
        }
        return done ? statuses : nil
    }

    /// One unit held by one request at most, one message per customer (each line its own customer).
    static func checkOnceEach(_ system: SystemFixture, _ statuses: [String: RentalStatus], ids: [String]) throws {
        let assignments = try AllocatorStore(spool: try Spool(path: system.spool)).assignments()
        #expect(Set(assignments.map(\.unit)).count == assignments.count, "a unit assigned twice for the same period")
        #expect(Set(assignments.map(\.request)).count == assignments.count, "a request assigned twice")
        for id in ids {
            let customer = try #require(statuses[id]).customer
            #expect(system.mailbox(customer).count == 1, "customer \(customer): \(system.mailbox(customer))")
        }
    }

    /// 1,000 requests in one batch with CRLF line ends, no final newline and three bad lines:
    /// one queue item, 65 naming the bad lines, every good request decided and notified once,
    /// and each one's status, list and cancel work as for a single submit.
    @Test func aThousandLineBatchIsDecidedAndEachCustomerNotifiedOnce() throws {
        let system = try SystemFixture(settings: ["breaker_high_water": "100000"])
        try Self.addUnits(system, count: 300)
        var lines = (0..<1000).map { Self.line("c\($0)") }
        lines.insert("{\"customer\": 1}", at: 10)
        lines.insert(Self.line("bad", size: "XXL"), at: 500)
        lines.insert("garbage", at: 1002)
        let path = system.directory.sub("batch.jsonl")
        try Self.write(lines, to: path, separator: "\r\n", finalNewline: false)
        let submitted = try system.ctl("submit", "--batch", path, "--json")
        #expect(submitted.status == 65, "\(submitted.errors)")
        let results = try Self.results(submitted.output)
        #expect(results.count == 1003)
        let refused = results.filter { $0["error"] != nil }.compactMap { $0["line"] as? Int }
        #expect(refused == [11, 501, 1003])
        for line in refused { #expect(submitted.errors.contains("batch.jsonl:\(line): "), "\(submitted.errors)") }
        let ids = results.compactMap { $0["id"] as? String }
        #expect(ids.count == 1000 && Set(ids).count == 1000)
        let items = filesBelow("\(system.spool)/queues/allocation/ready")
        #expect(items.count == 1, "one spool item for the batch: \(items.prefix(3))")
        // Before the allocator runs: each request's status, as a single submit's.
        #expect(try system.status(ids[0]).state == .received)
        let cancelled = ids[1]
        #expect(try system.ctl("cancel", cancelled).status == 0)

        try system.startBoth()
        let statuses = try #require(try Self.settled(system, ids, seconds: 240), "not every request of the batch was decided and notified")
        #expect(statuses[cancelled]?.state == .cancelled)
        let assigned = ids.filter { statuses[$0]?.state == .confirmed }
        #expect(assigned.count == 300, "every unit assigned once")
        #expect(ids.filter { statuses[$0]?.state == .rejected }.count == 699)
        try Self.checkOnceEach(system, statuses, ids: ids)
        // list, status and cancel per request of the batch.
        let listed = try system.json([RentalStatus].self, "list", "--state", "confirmed")
        #expect(Set(listed.map(\.id)) == Set(assigned))
        #expect(try system.ctl("cancel", assigned[0]).status == 0)
        _ = try system.waitFor(assigned[0], .cancelled, seconds: 60)
        #expect(system.eventually(60) { system.mailbox(statuses[assigned[0]]!.customer).count == 2 }, "the cancellation is notified once")
    }

    /// The allocator killed (SIGKILL) in the middle of a batch, then restarted: every request
    /// terminal exactly once, no unit assigned twice, no customer notified twice.
    @Test func anAllocatorKilledMidBatchDecidesEveryRequestOnceAfterRestart() throws {
        let system = try SystemFixture(settings: ["breaker_high_water": "100000"])
        try Self.addUnits(system, count: 100)
        let path = system.directory.sub("batch.jsonl")
        try Self.write((0..<1200).map { Self.line("k\($0)") }, to: path)
        let submitted = try system.ctl("submit", "--batch", path, "--json")
        try #require(submitted.status == 0, "\(submitted.errors)")
        let ids = try Self.results(submitted.output).compactMap { $0["id"] as? String }
        try #require(ids.count == 1200)

        try system.start("spool-allocator", name: "allocator")
        try system.start("spool-notifier")
        // Mid-batch: the first outcomes are being published (a notification queued or delivered)
        // while the batch item is still claimed, not acknowledged.
        #expect(system.eventually(120) {
            !filesBelow("\(system.spool)/queues/notifications/ready").isEmpty || !filesBelow("\(system.spool)/maildir").isEmpty
        }, "the allocator published nothing")
        system.crash("allocator")
        #expect(!filesBelow("\(system.spool)/queues/allocation/active").isEmpty,
                "the allocator had finished the batch before the kill; the test proves nothing")
        try system.start("spool-allocator", name: "allocator")
        let statuses = try #require(try Self.settled(system, ids, seconds: 300), "not every request was decided and notified after the restart")
        #expect(ids.filter { statuses[$0]?.state == .confirmed }.count == 100)
        #expect(ids.filter { statuses[$0]?.state == .rejected }.count == 1100)
        try Self.checkOnceEach(system, statuses, ids: ids)
        // One decision record per request in the journal's projection, nothing left queued.
        #expect(filesBelow("\(system.spool)/queues/allocation").filter { !$0.hasSuffix(".lock") }.isEmpty)
    }

    /// Standard input, a table, and the refusals of the whole batch: nothing queued for any.
    @Test func standardInputTheTableAndWholeBatchRefusals() throws {
        let system = try SystemFixture()
        let path = system.directory.sub("batch.jsonl")
        try Self.write([Self.line("a"), Self.line("b")], to: path)
        let piped = try ChildProcess("/bin/sh", ["-c", "\"$0\" submit --batch - < \"$1\"", "\(productsDirectory())/spoolctl", path],
                                     environment: system.environment).finish()
        #expect(piped.status == 0, "\(piped.errors)")
        let rows = piped.output.split(separator: "\n")
        #expect(rows.first?.hasPrefix("LINE  ID") == true && rows.count == 3 && rows[1].hasPrefix("1 ") && rows[2].contains("accepted"))
        let queued = filesBelow("\(system.spool)/queues/allocation/ready").count
        #expect(queued == 1)

        let empty = system.directory.sub("empty.jsonl")
        try Self.write(["", " "], to: empty)
        let huge = system.directory.sub("huge.jsonl")
        try Self.write(Array(repeating: Self.line("h"), count: BatchFile.maxLines + 1), to: huge)
        let fifo = system.directory.sub("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let cases: [([String], Int32)] = [
            (["submit", "--batch", empty], 64),
            (["submit", "--batch", fifo], 64),  // nobody writes to it: empty, never a hang
            (["submit", "--batch", huge], 65),
            (["submit", "--batch", system.directory.sub("missing.jsonl")], 66),
            (["submit", "--batch", path, "--customer", "a"], 64),
            (["submit", "--batch", path, "--wait", "5"], 64),
            (["submit", "--customer", "a", "--contact", "a@example.com", "--size", "S", "--months", "1"], 64),
        ]
        for (arguments, code) in cases {
            let result = try system.ctl(arguments)
            #expect(result.status == code, "\(arguments): \(result.status) \(result.errors)")
            #expect(result.errors.split(separator: "\n").count == 1, "one line: \(result.errors)")
            let json = try system.ctl(arguments + ["--json"])
            if code != 64 {
                let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
                #expect(object?["exit_code"] as? Int == Int(code), "\(arguments): \(json.output)")
            }
        }
        #expect(filesBelow("\(system.spool)/queues/allocation/ready").count == queued, "a refused batch queues nothing")
    }
}
