import Foundation
import Intake
import Rentals
import Testing
@testable import Allocator
@testable import Spool

/// The brief's walk-throughs, end to end through the real processes.
@Suite(.serialized) struct SagaTests {
    @Test func rentAssignsConfirmsAndNotifies() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "M"), ("A-2", "M")])
        try system.startBoth()
        let id = try system.submit(size: "M", from: "2099-01-01", to: "2099-04-01")
        let status = try system.waitFor(id, .confirmed)
        #expect(status.unit != nil)
        #expect(status.site == "Site M")
        #expect(status.notifiedAt != nil)
        let mail = system.mailbox("alice@example.com")
        #expect(mail == ["\(id)-confirmation"])
        let message = try String(contentsOfFile: "\(system.spool)/maildir/alice@example.com/new/\(mail[0])", encoding: .utf8)
        #expect(message.contains("X-Request-ID: \(id)"))
        #expect(message.contains("To: alice@example.com"))
        #expect(message.contains("Unit:    \(status.unit!)"))
        #expect(message.contains("2099-01-01 until 2099-04-01"))
        // Correlation: the request id is in every journal record about it.
        #expect(try system.journalTexts().filter { $0.contains(id) }.count >= 3)
    }

    @Test func cancelAfterAssignmentReleasesTheUnit() throws {
        let system = try SystemFixture()
        try system.addUnits([("ONLY-1", "S")])
        try system.startBoth()
        let first = try system.submit(size: "S", from: "2099-02-01", to: "2099-03-01")
        #expect(try system.waitFor(first, .confirmed).unit == "ONLY-1")
        let taken = try system.submit(size: "S", from: "2099-02-10", to: "2099-02-20")
        #expect(try system.waitFor(taken, .rejected).reason?.contains("no S unit") == true)

        let cancel = try system.ctl("cancel", first)
        #expect(cancel.status == 0, "\(cancel.errors)")
        let cancelled = try system.waitFor(first, .cancelled)
        #expect(cancelled.cancelRequestedAt != nil)
        #expect(try system.eventually { try system.status(first).notifiedAt != nil })
        #expect(system.mailbox("alice@example.com").contains("\(first)-cancellation"))

        let again = try system.submit(size: "S", from: "2099-02-01", to: "2099-03-01")
        #expect(try system.waitFor(again, .confirmed).unit == "ONLY-1", "the released unit is free again")
        // Cancelling twice is harmless; cancelling a rejected request is a clear no-op.
        let twice = try system.ctl("cancel", first)
        #expect(twice.status == 0 && twice.output.contains("already cancelled"))
        let rejected = try system.ctl("cancel", taken)
        #expect(rejected.status == 0 && rejected.output.contains("rejected"))
    }

    @Test func retiringAUnitKeepsItsRentalsAndTakesNoNewOnes() throws {
        let system = try SystemFixture()
        try system.addUnits([("OLD-1", "M")])
        try system.startBoth()
        let kept = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01")
        #expect(try system.waitFor(kept, .confirmed).unit == "OLD-1")
        #expect(try system.ctl("units", "retire", "OLD-1").status == 0)
        let units = try system.json([StorageUnit].self, "units", "list")
        #expect(units == [StorageUnit(id: "OLD-1", size: "M", site: "Site M", inService: false)])
        let refused = try system.submit(size: "M", from: "2099-06-01", to: "2099-07-01")
        #expect(try system.waitFor(refused, .rejected).unit == nil)
        #expect(try system.status(kept).state == .confirmed, "the existing rental stands")
        #expect(try system.ctl("cancel", kept).status == 0)
        _ = try system.waitFor(kept, .cancelled)
    }

    @Test func cancelBeforeAllocationNeverAssigns() throws {
        let system = try SystemFixture()
        try system.addUnits([("U-1", "L")])
        let id = try system.submit(size: "L", from: "2099-05-01", to: "2099-06-01")
        #expect(try system.status(id).state == .received, "read-your-writes before the allocator ran")
        #expect(try system.ctl("cancel", id).status == 0)
        try system.startBoth()
        let status = try system.waitFor(id, .cancelled)
        #expect(status.unit == nil)
        #expect(try system.eventually { try system.status(id).notifiedAt != nil })
        // The absence checks below mean something only once the allocator has acknowledged the
        // request's allocation item (and the notifier every message), so wait for that first.
        let spool = try Spool(path: system.spool)
        #expect(try system.eventually {
            try spool.queue(.allocation).counts() == QueueCounts() && spool.queue(.notifications).counts() == QueueCounts()
        })
        let store = try AllocatorStore(spool: spool)
        #expect(try store.assignments().isEmpty)
        #expect(!system.mailbox("alice@example.com").contains("\(id)-confirmation"))
    }

    @Test func rejectionOffersTheNearestAlternative() throws {
        let system = try SystemFixture()
        try system.addUnits([("S-1", "S"), ("L-1", "L")])
        try system.startBoth()
        let first = try system.submit(size: "S", from: "2099-01-01", to: "2099-04-01")
        _ = try system.waitFor(first, .confirmed)
        let second = try system.submit(size: "S", from: "2099-02-01", to: "2099-03-01")
        let rejected = try system.waitFor(second, .rejected)
        #expect(rejected.alternative?.size == "L")
        #expect(rejected.alternative?.earliestStart == CalendarDay(iso: "2099-04-01"))
        #expect(rejected.reason?.contains("size L is free") == true)
        #expect(try system.eventually { try system.status(second).notifiedAt != nil })
        let mail = try String(contentsOfFile: "\(system.spool)/maildir/alice@example.com/new/\(second)-rejection", encoding: .utf8)
        #expect(mail.contains("Instead: a unit of size L is free for that period"))
    }

    @Test func submitWhileTheAllocatorIsStoppedIsProcessedLater() throws {
        let system = try SystemFixture()
        try system.addUnits([("X-1", "XL")])
        let id = try system.submit(size: "XL", from: "2099-01-01", to: "2099-02-01")
        #expect(try system.status(id).state == .received)
        usleep(300_000)
        #expect(try system.status(id).state == .received, "nothing processes it while the allocator is down")
        try system.startBoth()
        #expect(try system.waitFor(id, .confirmed).unit == "X-1")
    }

    @Test func idempotencyKeyReturnsTheFirstRequest() throws {
        let system = try SystemFixture()
        let first = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01", extra: ["--idempotency-key", "order-42"])
        let again = try system.ctl("submit", "--customer", "alice@example.com", "--contact", "alice@example.com", "--size", "M",
                                   "--from", "2099-01-01", "--to", "2099-02-01", "--idempotency-key", "order-42", "--json")
        #expect(again.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(again.output.utf8)) as? [String: Any]
        #expect(object?["id"] as? String == first)
        #expect(object?["created"] as? Bool == false)
        #expect(try system.json([RentalStatus].self, "list").map(\.id) == [first])
        #expect(try Spool(path: system.spool).queue(.allocation).counts().ready == 1)
    }

    @Test func waitReportsTheDecisionOrTimesOut() throws {
        let system = try SystemFixture()
        try system.addUnits([("W-1", "S")])
        let queued = try system.ctl("submit", "--customer", "bob", "--contact", "+4915112345678", "--size", "S",
                                    "--from", "2099-01-01", "--months", "2", "--wait", "1")
        #expect(queued.status == 75)
        #expect(queued.errors.contains("still queued"))
        try system.startBoth()
        let decided = try system.ctl("submit", "--customer", "bob", "--contact", "+4915112345678", "--size", "S",
                                     "--from", "2099-06-01", "--months", "2", "--wait")
        #expect(decided.status == 0, "\(decided.errors)")
        #expect(decided.output.contains("W-1"))
    }

    @Test func statusByCustomerIsNewestFirstAndListFiltersByState() throws {
        let system = try SystemFixture()
        let a = try system.submit(customer: "carol", size: "S", from: "2099-01-01", to: "2099-02-01")
        let b = try system.submit(customer: "carol", size: "M", from: "2099-01-01", to: "2099-02-01")
        _ = try system.submit(customer: "dave", size: "M", from: "2099-01-01", to: "2099-02-01")
        #expect(try system.json([RentalStatus].self, "status", "--customer", "carol").map(\.id) == [b, a])
        #expect(try system.json([RentalStatus].self, "list", "--state", "received").count == 3)
        #expect(try system.json([RentalStatus].self, "list", "--state", "confirmed").isEmpty)
        let table = try system.ctl("status", "--customer", "carol")
        #expect(table.output.hasPrefix("ID  ") || table.output.hasPrefix("ID "))
    }
}
