import Foundation
import Intake
import Logging
import Rentals
import Testing
@testable import Allocator
@testable import Spool

/// The waiting list end to end through the real processes (`submit --waitlist`, promotion on a
/// cancel or a new unit, expiry, cancel of a waiting request, a crash between commit and publish).
@Suite(.serialized) struct WaitlistSystemTests {
    static let customer = "alice@example.com"

    /// A system with unit A-1 (size S, site "Site S") rented by a holder for 2099-01-01..2099-03-01,
    /// daemons running.
    private func heldSystem(environment: [String: String] = [:]) throws -> (SystemFixture, holder: String) {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "S")])
        try system.start("spool-allocator", environment: environment)
        try system.start("spool-notifier")
        let holder = try system.submit(size: "S", from: "2099-01-01", to: "2099-03-01")
        #expect(try system.waitFor(holder, .confirmed).unit == "A-1")
        return (system, holder)
    }

    private func waitlist(_ system: SystemFixture, from: String = "2099-01-10", to: String = "2099-02-10", extra: [String] = []) throws -> String {
        let id = try system.submit(size: "S", from: from, to: to, extra: ["--waitlist"] + extra)
        let status = try system.waitFor(id, .waitlisted)
        #expect(status.unit == nil && status.waitlist != nil)
        return id
    }

    private func message(_ system: SystemFixture, _ name: String) throws -> String {
        try String(contentsOfFile: "\(system.spool)/maildir/\(Self.customer)/new/\(name)", encoding: .utf8)
    }

    @Test func waitlistedRequestIsAssignedWithinASecondOfACancel() throws {
        let (system, holder) = try heldSystem()
        let waiter = try waitlist(system)
        #expect(system.eventually { system.mailbox(Self.customer).contains("\(waiter)-waitlisted") })
        let told = try message(system, "\(waiter)-waitlisted")
        #expect(told.replacingOccurrences(of: "\n ", with: " ").contains("Subject: On the waiting list for size S from 2099-01-10 [request \(waiter)]"))
        #expect(told.contains("The request expires on 2099-01-10 if none is."))
        #expect(try system.eventually { try system.status(waiter).notifiedAt != nil }, "the waitlisted message is delivered")

        let cancel = try system.ctl("cancel", holder)
        let acknowledged = ContinuousClock.now
        #expect(cancel.status == 0, "\(cancel.errors)")
        var promoted: RentalStatus?
        _ = system.eventually(5) {
            promoted = try? system.status(waiter)
            return promoted?.state == .assigned || promoted?.state == .confirmed
        }
        let elapsed = ContinuousClock.now - acknowledged
        #expect(promoted?.unit == "A-1" && promoted?.revision == 1, "\(String(describing: promoted))")
        #expect(elapsed < .seconds(1), "promoted \(elapsed) after the cancel's acknowledgement")
        FileHandle.standardError.write(Data("waitlist: promoted status seen \(elapsed) after the cancel's acknowledgement\n".utf8))
        let confirmed = try system.waitFor(waiter, .confirmed)
        #expect(confirmed.version == RentalStatus.version(revision: 1, step: 3) && confirmed.notifiedAt != nil)
        #expect(system.eventually { system.mailbox(Self.customer).contains("\(waiter)-confirmation-r1") })
        let confirmation = try message(system, "\(waiter)-confirmation-r1")
        #expect(confirmation.contains("A unit became free: your waiting-list request \(waiter) is confirmed."))
        #expect(confirmation.contains("Unit:    A-1"))
        #expect(try system.waitFor(holder, .cancelled).unit == "A-1")
    }

    @Test func olderWaitlistedRequestWinsTheFreedUnit() throws {
        let (system, holder) = try heldSystem()
        let older = try waitlist(system)
        let younger = try waitlist(system)
        #expect(try system.status(older).waitlist?.position == 1)
        #expect(try system.status(younger).waitlist?.position == 2)
        let waiting = try system.json([RentalStatus].self, "list", "--state", "waitlisted")
        #expect(Set(waiting.map(\.id)) == [older, younger])
        #expect(try system.ctl("cancel", holder).status == 0)
        #expect(try system.waitFor(older, .confirmed).unit == "A-1")
        #expect(try system.status(younger).state == .waitlisted, "the younger one keeps waiting")
        let details = try system.ctl("status", younger)
        #expect(details.output.contains("waiting list") && details.output.contains("expires 2099-01-10"), "\(details.output)")
    }

    @Test func waitlistedRequestExpiresAtItsStart() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "S")])
        try system.startBoth()
        let today = CalendarDay.today()
        let holder = try system.submit(size: "S", from: "\(today.adding(days: 1))", to: "\(today.adding(days: 40))")
        _ = try system.waitFor(holder, .confirmed)
        let waiter = try waitlist(system, from: "\(today.adding(days: 2))", to: "\(today.adding(days: 10))")
        // The allocator's date moves to the waiter's start (the hook is read by spool-allocator only).
        let log = system.stopReporting("spool-allocator")
        #expect(!log.errors.contains("test hook"))
        try system.start("spool-allocator", environment: ["SPOOL_TEST_DAY_OFFSET": "2"])
        let expired = try system.waitFor(waiter, .expired)
        #expect(expired.reason == "no S unit became free before \(today.adding(days: 2))")
        #expect(try system.eventually { try system.status(waiter).notifiedAt != nil })
        #expect(system.mailbox(Self.customer).contains("\(waiter)-expiry"))
        #expect(try message(system, "\(waiter)-expiry").replacingOccurrences(of: "\n ", with: " ").contains("Subject: Waiting-list request expired [request \(waiter)]"))
        #expect(try system.json([RentalStatus].self, "list", "--state", "expired").map(\.id) == [waiter])
        let cancel = try system.ctl("cancel", waiter)
        #expect(cancel.status == 0 && cancel.output.contains("expired"))
        #expect(system.stopReporting("spool-allocator").errors.contains("test hook"), "the shifted date is logged")
        // spoolctl never reads it: a submit starting today is still accepted as today.
        var environment = system.environment
        environment["SPOOL_TEST_DAY_OFFSET"] = "5"
        let submit = try ChildProcess("spoolctl", ["submit", "--customer", "c1", "--contact", "+4915112345678", "--size", "S",
                                                   "--from", "\(today.adding(days: 1))", "--months", "1"], environment: environment).finish()
        #expect(submit.status == 0, "\(submit.errors)")
    }

    @Test func cancelOfAWaitlistedRequest() throws {
        let (system, holder) = try heldSystem()
        let waiter = try waitlist(system)
        let cancel = try system.ctl("cancel", waiter)
        #expect(cancel.status == 0, "\(cancel.errors)")
        let cancelled = try system.waitFor(waiter, .cancelled)
        #expect(cancelled.unit == nil && cancelled.waitlist == nil && cancelled.cancelRequestedAt != nil)
        #expect(try system.eventually { try system.status(waiter).notifiedAt != nil })
        #expect(system.mailbox(Self.customer).contains("\(waiter)-cancellation"))
        #expect(try system.ctl("cancel", holder).status == 0)
        _ = try system.waitFor(holder, .cancelled)
        #expect(try system.status(waiter).state == .cancelled, "a cancelled waiting request is never assigned")
        let again = try system.ctl("cancel", waiter)
        #expect(again.status == 0 && again.output.contains("already cancelled"))
    }

    @Test func unitsAddAndReinstatePromoteWaitingRequests() throws {
        let (system, _) = try heldSystem(environment: ["SPOOL_HEARTBEAT_SECONDS": "1"])
        let first = try waitlist(system)
        let second = try waitlist(system)
        let added = try system.ctl("units", "add", "B-1", "--size", "S", "--site", "Site S")
        #expect(added.status == 0 && added.output.contains("1 unit added; 1 waiting request assigned"), "\(added.output) \(added.errors)")
        #expect(try system.waitFor(first, .confirmed).unit == "B-1", "published by the allocator's next tick")
        #expect(system.eventually { system.mailbox(Self.customer).contains("\(first)-confirmation-r1") })
        #expect(try system.ctl("units", "retire", "B-1").status == 0)
        #expect(try system.status(second).state == .waitlisted)
        // A retired unit comes back and takes the next one.
        #expect(try system.ctl("units", "add", "C-1", "--size", "M").status == 0)
        let reinstated = try system.json([String: AnyCodable].self, "units", "reinstate", "A-1")
        #expect(reinstated["promoted"]?.strings == [], "A-1 is still rented: nothing fits")
        let change = try system.ctl("units", "change", "C-1", "--size", "S")
        #expect(change.status == 0 && change.output.contains("1 waiting request assigned"), "\(change.output) \(change.errors)")
        #expect(try system.waitFor(second, .confirmed).unit == "C-1")
        let unknown = try system.ctl("units", "reinstate", "NOPE")
        #expect(unknown.status == 66)
    }

    @Test func submitWaitAnswersWaitlistedWithExitZero() throws {
        let (system, _) = try heldSystem()
        let text = try system.ctl("submit", "--customer", Self.customer, "--contact", Self.customer, "--size", "S",
                                  "--from", "2099-01-05", "--to", "2099-01-25", "--waitlist", "--site", "Site S", "--wait", "20")
        #expect(text.status == 0, "\(text.errors)")
        #expect(text.output.contains("waitlisted: no S unit is free for the whole period 2099-01-05 to 2099-01-25"), "\(text.output)")
        #expect(text.output.contains("you will be told when one is assigned (expires 2099-01-05; position 1 in the waiting list)"))
        let json = try system.ctl("submit", "--customer", Self.customer, "--contact", Self.customer, "--size", "S",
                                  "--from", "2099-01-05", "--to", "2099-01-25", "--waitlist", "--wait", "20", "--json")
        #expect(json.status == 0)
        let status = try JSONDecoder().decode(RentalStatus.self, from: Data(json.output.utf8))
        #expect(status.state == .waitlisted && status.waitlist?.position == 2)
        // A site without any unit (a typo) is refused before anything is queued, as a bad one.
        let elsewhere = try system.ctl("submit", "--customer", Self.customer, "--contact", Self.customer, "--size", "S",
                                       "--from", "2099-01-05", "--months", "1", "--waitlist", "--site", "Site Z")
        #expect(elsewhere.status == 65 && elsewhere.errors.contains("no unit is at that site; the sites are \"Site S\""), "\(elsewhere.errors)")
        #expect(try system.json([RentalStatus].self, "list").count == 3, "nothing queued")
        let bad = try system.ctl("submit", "--customer", Self.customer, "--contact", Self.customer, "--size", "S",
                                 "--from", "2099-01-05", "--months", "1", "--site", "a\nb")
        #expect(bad.status == 65 && bad.errors.contains("--site"), "\(bad.errors)")
    }

    /// With the notifier stopped, the waitlisted message and the promotion's confirmation wait
    /// in its queue together: the customer gets the confirmation only, never "you wait" after
    /// "you have a unit".
    @Test func aWaitingMessageOvertakenByThePromotionIsNotDelivered() throws {
        let (system, holder) = try heldSystem()
        system.stop("spool-notifier")
        let waiter = try waitlist(system)
        #expect(try system.ctl("cancel", holder).status == 0)
        _ = try system.waitFor(waiter, .assigned)
        try system.start("spool-notifier")
        _ = try system.waitFor(waiter, .confirmed)
        _ = try system.waitFor(holder, .cancelled)
        #expect(system.eventually { system.mailbox(Self.customer).contains("\(holder)-cancellation") })
        #expect(system.mailbox(Self.customer).filter { $0.hasPrefix(waiter) } == ["\(waiter)-confirmation-r1"])
        #expect(try system.status(waiter).version == RentalStatus.version(revision: 1, step: 3))
    }

    /// The allocator dies after committing a promotion and before publishing it: the restarted
    /// allocator publishes the outbox once, the redelivered cancel decides nothing, and the
    /// customer gets exactly one confirmation.
    @Test func aCrashBetweenCommitAndPublishNotifiesOnce() throws {
        let (system, holder) = try heldSystem()
        let waiter = try waitlist(system)
        system.crash("spool-allocator")
        #expect(try system.ctl("cancel", holder).status == 0)
        // What the killed allocator had done: the cancel decided (and the promotion with it) and
        // committed, nothing published, the item not acknowledged.
        let spool = try Spool(path: system.spool)
        let service = try AllocationService(spool: spool, configuration: SystemConfiguration(), logger: Logger(label: "test"))
        let queue = try spool.queue(.allocation, retry: RetryPolicy(maxAttempts: 5))
        let payloads = try queue.queuedPayloads()
        let commands = payloads.compactMap { try? JSONDecoder().decode(AllocationCommand.self, from: Data($0)) }
        #expect(commands.count == 1)
        #expect(try service.decide(commands) == [.cancelled])
        #expect(try system.status(waiter).state == .waitlisted, "not published yet")
        try system.start("spool-allocator")
        #expect(try system.waitFor(waiter, .confirmed).unit == "A-1")
        #expect(try system.waitFor(holder, .cancelled).notifiedAt != nil || system.eventually { (try? system.status(holder).notifiedAt) != nil })
        #expect(system.eventually { (try? queue.queuedPayloads().isEmpty) == true }, "the redelivered cancel is acknowledged")
        let mails = system.mailbox(Self.customer).filter { $0.hasPrefix(waiter) }
        #expect(mails.sorted() == ["\(waiter)-confirmation-r1", "\(waiter)-waitlisted"], "\(mails)")
        // Then SIGKILL at moments around the decision of the next cancels: still one of each.
        for round in 0..<3 {
            let month = "2099-0\(4 + round)"
            let held = try system.submit(size: "S", from: "\(month)-01", to: "\(month)-20")
            _ = try system.waitFor(held, .confirmed)
            let next = try waitlist(system, from: "\(month)-05", to: "\(month)-15")
            #expect(try system.ctl("cancel", held).status == 0)
            usleep(UInt32(round) * 15_000)
            system.crash("spool-allocator")
            try system.start("spool-allocator")
            #expect(try system.waitFor(next, .confirmed).unit == "A-1")
            #expect(system.eventually { system.mailbox(Self.customer).contains("\(next)-confirmation-r1") })
            #expect(system.mailbox(Self.customer).filter { $0.hasPrefix(next) }.sorted() == ["\(next)-confirmation-r1", "\(next)-waitlisted"])
        }
        let assignments = try AllocatorStore(spool: Spool(path: system.spool)).assignments()
        #expect(assignments.count == Set(assignments.map(\.request)).count)
    }
}

/// A JSON value decoded loosely, for command output with mixed fields.
struct AnyCodable: Decodable {
    let value: Any
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) { value = text } else if let flag = try? container.decode(Bool.self) { value = flag }
        else if let list = try? container.decode([String].self) { value = list } else { value = NSNull() }
    }
    var strings: [String]? { value as? [String] }
}
