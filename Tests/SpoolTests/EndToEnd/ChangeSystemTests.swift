import Foundation
import GRDB
import Intake
import Logging
import Rentals
import Testing
@testable import Allocator
@testable import Spool

/// `spoolctl extend` and `spoolctl end` end to end through the real processes: refusal that
/// changes nothing, an early end feeding the waiting list, idempotency under redelivery and
/// crashes, prices at the rate in force.
@Suite(.serialized) struct ChangeSystemTests {
    static let customer = "alice@example.com"

    /// Every column of the store's rows of `ids`, as text (byte comparisons).
    private func rows(_ system: SystemFixture, _ ids: [String]) throws -> [String: [String: String]] {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: "\(system.spool)/allocator/state.sqlite", configuration: configuration)
        return try queue.read { db in
            var result: [String: [String: String]] = [:]
            for id in ids {
                guard let row = try Row.fetchOne(db, sql: "SELECT * FROM rental WHERE request_id = ?", arguments: [id]) else { continue }
                var columns: [String: String] = [:]
                for (name, value) in row { columns[name] = value.description }
                result[id] = columns
            }
            return result
        }
    }

    private func held(_ system: SystemFixture, from: String, to: String) throws -> String {
        let id = try system.submit(size: "S", from: from, to: to)
        #expect(try system.waitFor(id, .confirmed).unit == "A-1")
        return id
    }

    private func decoded(_ output: String) throws -> RentalStatus {
        try JSONDecoder().decode(RentalStatus.self, from: Data(output.utf8))
    }

    @Test func extensionCollidingWithTheNextRentalIsRefusedAndChangesNothing() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "S")])
        try system.startBoth()
        let first = try held(system, from: "2099-01-01", to: "2099-02-01")
        let next = try held(system, from: "2099-02-15", to: "2099-03-15")
        let before = try rows(system, [first, next]), statusBefore = try system.status(first)

        let result = try system.ctl("extend", first, "--to", "2099-03-01", "--wait", "20", "--json")
        #expect(result.status == 0, "a refusal is a decision: \(result.errors)")
        let refused = try decoded(result.output)
        #expect(refused.change?.applied == false && refused.change?.reason == "unit A-1 is taken from 2099-02-15", "\(result.output)")
        #expect(refused.to == statusBefore.to && refused.unit == statusBefore.unit && refused.price == statusBefore.price)
        let after = try rows(system, [first, next])
        #expect(after[next] == before[next], "the next rental is byte-identical")
        for column in ["state", "unit_id", "start_day", "end_day", "currency", "amount_minor"] {
            #expect(after[first]?[column] == before[first]?[column], "\(column) changed")
        }
        // The status gains only the revision and the change (then the notifier's step).
        let told = try system.waitFor(first, .confirmed)
        #expect(system.eventually { (try? system.status(first).change?.notifiedAt) != nil })
        var expected = statusBefore, shown = try system.status(first)
        expected.revision = 1
        expected.change = refused.change
        expected.change?.notifiedAt = shown.change?.notifiedAt
        expected.version = RentalStatus.version(revision: 1, step: 3)
        (expected.updatedAt, expected.notifiedAt) = (shown.updatedAt, shown.notifiedAt)
        #expect(shown == expected, "\(shown) vs \(expected)")
        #expect(told.unit == "A-1")
        #expect(system.eventually { system.mailbox(Self.customer).contains("\(first)-extension-refused-r1") })
        let message = try String(contentsOfFile: "\(system.spool)/maildir/\(Self.customer)/new/\(first)-extension-refused-r1", encoding: .utf8)
        #expect(message.contains("Subject: Rental not extended [request \(first)]") && message.contains("taken from 2099-02-15"))

        // The text form says so; an extension that fits is applied, on the same unit.
        let text = try system.ctl("extend", first, "--to", "2099-03-01", "--wait", "20")
        #expect(text.status == 0 && text.output.contains("request \(first) not extended: unit A-1 is taken from 2099-02-15; the rental is unchanged: unit A-1 until 2099-02-01"),
                "\(text.output) \(text.errors)")
        let details = try system.ctl("status", first).output
        #expect(details.contains("extend to 2099-03-01: refused (unit A-1 is taken from 2099-02-15), was until 2099-02-01"), "\(details)")
        let fits = try system.ctl("extend", first, "--to", "2099-02-15", "--wait", "20")
        #expect(fits.status == 0 && fits.output.contains("request \(first) extended: unit A-1 until 2099-02-15"), "\(fits.output) \(fits.errors)")
        let again = try system.ctl("extend", first, "--to", "2099-02-15")
        #expect(again.status == 0 && again.output.contains("already runs until 2099-02-15"), "a retry by hand queues nothing")
        #expect(try system.status(first).revision == 3)
        let assignments = try AllocatorStore(spool: Spool(path: system.spool)).assignments()
        #expect(assignments.map(\.period.end).sorted() == [CalendarDay(iso: "2099-02-15")!, CalendarDay(iso: "2099-03-15")!])
    }

    @Test func earlyEndReleasesAndFeedsTheWaitlist() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "S")])
        try system.startBoth()
        let holder = try held(system, from: "2099-01-01", to: "2099-06-01")
        let waiter = try system.submit(size: "S", from: "2099-03-01", to: "2099-04-01", extra: ["--waitlist"])
        _ = try system.waitFor(waiter, .waitlisted)

        let badDay = try system.ctl("end", holder, "--on", "2099-01-01")
        #expect(badDay.status == 65 && badDay.errors.contains("use spoolctl cancel"), "\(badDay.errors)")
        let ended = try system.ctl("end", holder, "--on", "2099-03-01", "--wait", "20")
        #expect(ended.status == 0 && ended.output.contains("request \(holder) ends on 2099-03-01: unit A-1 released from 2099-03-01"),
                "\(ended.output) \(ended.errors)")
        let promoted = try system.waitFor(waiter, .confirmed)
        #expect(promoted.unit == "A-1" && promoted.revision == 1)
        let shortened = try system.status(holder)
        #expect(shortened.to == CalendarDay(iso: "2099-03-01") && shortened.change?.kind == .end && shortened.change?.applied == true)
        #expect(system.eventually {
            Set(system.mailbox(Self.customer)).isSuperset(of: ["\(holder)-end-r1", "\(waiter)-confirmation-r1"])
        })
        let message = try String(contentsOfFile: "\(system.spool)/maildir/\(Self.customer)/new/\(holder)-end-r1", encoding: .utf8)
        #expect(message.contains("Subject: Rental ends on 2099-03-01") && message.contains("Unit:    A-1 (released from 2099-03-01)"))
        let same = try system.ctl("end", holder, "--on", "2099-03-01", "--json")
        #expect(try same.status == 0 && decoded(same.output).revision == 1, "already ends then: nothing queued")
        let assignments = try AllocatorStore(spool: Spool(path: system.spool)).assignments().sorted { $0.period.start < $1.period.start }
        #expect(assignments.map(\.request) == [holder, waiter])
    }

    /// The allocator killed between its commit and its publication, and an item delivered twice:
    /// one revision, one notification, one status per change.
    @Test func extendAndEndAreIdempotentUnderRedelivery() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "S")])
        try system.startBoth()
        let id = try held(system, from: "2099-01-01", to: "2099-02-01")
        system.crash("spool-allocator")
        let queued = try system.ctl("extend", id, "--to", "2099-03-01", "--json")
        #expect(queued.status == 0, "\(queued.errors)")
        // What a killed allocator had done: decided and committed, published nothing, the item
        // not acknowledged (its lease runs out: here released at once).
        let spool = try Spool(path: system.spool)
        let service = try AllocationService(spool: spool, configuration: SystemConfiguration(), logger: Logger(label: "test"))
        let queue = try spool.queue(.allocation, retry: RetryPolicy(maxAttempts: 5))
        let item = try #require(try queue.claimNext(lease: .seconds(60)))
        let command = try JSONDecoder().decode(AllocationCommand.self, from: Data(item.payload))
        guard case .changed = try service.decide(command) else { Issue.record("not applied"); return }
        try queue.release(item)
        #expect(try system.status(id).revision == 0, "not published yet")
        try system.start("spool-allocator")
        #expect(system.eventually { (try? system.status(id).change?.notifiedAt) != nil })
        #expect(system.eventually { (try? queue.queuedPayloads().isEmpty) == true }, "the redelivered change is acknowledged")
        // Delivered once more (a copy under its id, as a requeue would): decides nothing.
        try queue.enqueue(item.payload, id: item.id)
        #expect(system.eventually { (try? queue.queuedPayloads().isEmpty) == true })
        // An end the same way, crashing at moments around its decision.
        for (round, day) in ["2099-02-20", "2099-02-10"].enumerated() {
            let end = try system.ctl("end", id, "--on", day)
            #expect(end.status == 0, "\(end.errors)")
            usleep(UInt32(round) * 20_000)
            system.crash("spool-allocator")
            try system.start("spool-allocator")
            #expect(system.eventually { (try? system.status(id).to) == CalendarDay(iso: day) && (try? system.status(id).change?.notifiedAt) != nil })
        }
        let status = try system.status(id)
        #expect(status.revision == 3 && status.version == RentalStatus.version(revision: 3, step: 3), "\(status)")
        #expect(system.eventually { system.mailbox(Self.customer).count == 4 })
        #expect(system.mailbox(Self.customer).sorted() == ["\(id)-confirmation", "\(id)-end-r2", "\(id)-end-r3", "\(id)-extension-r1"].sorted())
        let decided = try system.journalTexts().compactMap { IndexEvent.decode(Array($0.utf8)) }
            .filter { $0.entity == id && $0.version == RentalStatus.version(revision: 1, step: 2) }
        #expect(decided.count == 1, "the extension's decision journaled once: \(decided.count)")
    }

    /// Prices: the booking keeps the rate agreed, the added days are priced at the rate in force
    /// when the extension is decided.
    @Test func extensionIsPricedAtTheRateInForce() throws {
        let system = try SystemFixture(settings: ["currency": "EUR"])
        try system.addUnits([("A-1", "S")])
        #expect(try system.ctl("prices", "set", "--size", "S", "--monthly", "50.00").status == 0)
        try system.startBoth()
        let id = try held(system, from: "2099-01-01", to: "2099-03-01")
        #expect(try system.status(id).price?.totalMinor == 10000)
        #expect(try system.ctl("prices", "set", "--size", "S", "--monthly", "80.00").status == 0)
        let result = try system.ctl("extend", id, "--to", "2099-04-01", "--wait", "20")
        #expect(result.status == 0 && result.output.contains("extended: unit A-1 until 2099-04-01 (added EUR 80.00 at EUR 80.00/month)"),
                "\(result.output) \(result.errors)")
        let price = try #require(try system.status(id).price)
        #expect(price.lines == [PriceLine(from: CalendarDay(iso: "2099-01-01")!, to: CalendarDay(iso: "2099-03-01")!, monthlyRateMinor: 5000, amountMinor: 10000),
                                PriceLine(from: CalendarDay(iso: "2099-03-01")!, to: CalendarDay(iso: "2099-04-01")!, monthlyRateMinor: 8000, amountMinor: 8000)])
        #expect(price.totalMinor == 18000)
        let stored = try rows(system, [id])[id]
        #expect(stored?["amount_minor"] == "18000" && stored?["currency"] == "\"EUR\"", "\(String(describing: stored))")
        #expect(system.eventually { system.mailbox(Self.customer).contains("\(id)-extension-r1") })
        let message = try String(contentsOfFile: "\(system.spool)/maildir/\(Self.customer)/new/\(id)-extension-r1", encoding: .utf8)
        #expect(message.contains("EUR 80.00 at EUR 80.00 per month") && message.contains("Total:   EUR 180.00"), "\(message)")
        // An early end re-prices the cut line at its own rate.
        let end = try system.ctl("end", id, "--on", "2099-03-16", "--wait", "20", "--json")
        let ended = try decoded(end.output).price
        #expect(ended?.lines.last == PriceLine(from: CalendarDay(iso: "2099-03-01")!, to: CalendarDay(iso: "2099-03-16")!, monthlyRateMinor: 8000, amountMinor: 4000))
        #expect(ended?.totalMinor == 14000)
    }

    /// The result of a queued change that cannot be written (a full disk) exits 74 and says the
    /// change is queued all the same; a retry by hand then changes nothing.
    @Test func aChangeWhoseAnswerCannotBeWrittenSaysItIsQueued() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "S")])
        try system.startBoth()
        let id = try held(system, from: "2099-01-01", to: "2099-02-01")
        let result = try OutputFailureTests.ctl(system, ">/dev/full", ["extend", id, "--to", "2099-03-01"])
        #expect(result.status == 74 && result.errors.contains("the extend of request \(id) is queued (change "), "\(result.errors)")
        #expect(system.eventually { (try? system.status(id).to) == CalendarDay(iso: "2099-03-01") })
        let retry = try system.ctl("extend", id, "--to", "2099-03-01")
        #expect(retry.status == 0 && retry.output.contains("already runs until 2099-03-01"))
        #expect(try system.status(id).revision == 1)
        // A cancelled rental cannot change (65), and a change racing a cancel is answered, not left waiting.
        #expect(try system.ctl("cancel", id).status == 0)
        _ = try system.waitFor(id, .cancelled)
        let late = try system.ctl("end", id, "--on", "2099-02-10", "--wait", "5")
        #expect(late.status == 65 && late.errors.contains("is cancelled"), "\(late.errors)")
    }
}
