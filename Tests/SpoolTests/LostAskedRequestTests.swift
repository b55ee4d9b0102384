import Foundation
import Intake
import Logging
import Rentals
import Testing
@testable import Allocator
@testable import Spool

/// Adversary (issue 11, phase 2): an acknowledged `submit --site X --waitlist` whose allocation
/// item is lost (a flipped byte: quarantined to `corrupt/`) is queued again by `reconcile` from
/// its journaled `received` status. Before the fix that status held neither the site nor the
/// waiting-list wish, so the request came back as a plain one: assigned at another site, or
/// rejected instead of waiting.
@Suite struct LostAskedRequestTests {
    @Test func reconcileQueuesALostWaitlistSubmitAgainAsItWasAsked() throws {
        let directory = TemporaryDirectory()
        var configuration = SystemConfiguration()
        configuration.spoolRoot = directory.sub("spool")
        let logger = Logger(label: "test")
        let spool = try Spool(path: configuration.spoolRoot, create: true, configuration: Spool.Configuration())
        let service = try AllocationService(spool: spool, configuration: configuration, logger: logger)
        try service.store.addUnits([StorageUnit(id: "N1", size: "S", site: "north"), StorageUnit(id: "S1", size: "S", site: "south")],
                                   sizes: SizeClass.defaults)
        let period = RentalPeriod(start: CalendarDay(iso: "2099-01-01")!, end: CalendarDay(iso: "2099-02-01")!)!
        let holder = RentalRequest(id: "holder", customer: "h", contact: "h@example.com", size: "S", period: period,
                                   submittedBy: 0, submittedByName: "root", createdAt: 0, site: "north")
        #expect(try service.decide(.allocate(holder)) == .assigned(unit: "N1"))
        try service.drainOutbox()

        let intake = try IntakeService(configuration: configuration, logger: logger, restricted: false)
        let form = RentalForm(customer: "c", contact: "c@example.com", size: "S", from: "2099-01-01", months: 1,
                              site: "north", waitlist: true)
        let id = try intake.submit(form, caller: Caller(uid: 0, name: "root", isOperator: true)).id
        // The item is lost (as a quarantine moves a damaged one to corrupt/).
        let queued = "\(configuration.spoolRoot)/queues/allocation"
        let items = filesBelow(queued).filter { !$0.hasPrefix("dead/") && $0.contains(id) }
        #expect(items.count == 1, "\(filesBelow(queued))")
        for item in items { try FileManager.default.removeItem(atPath: "\(queued)/\(item)") }

        #expect(try service.requeueLostItems(spool: spool).commands == [id])
        let queue = try spool.queue(.allocation, retry: RetryPolicy(maxAttempts: 5))
        let commands = try queue.queuedPayloads().compactMap { try? JSONDecoder().decode(AllocationCommand.self, from: Data($0)) }
        #expect(commands.count == 1)
        #expect(commands.first?.request?.site == "north" && commands.first?.request?.waitlist == true,
                "queued again as asked: \(String(describing: commands.first?.request))")
        #expect(try service.decide(commands) == [.waitlisted], "not assigned at another site (S1 at south is free)")
    }

    @Test func aPlainRequestsReceivedStatusIsUnchanged() throws {
        let period = RentalPeriod(start: CalendarDay(iso: "2099-01-01")!, end: CalendarDay(iso: "2099-02-01")!)!
        let request = RentalRequest(id: "r", customer: "c", contact: "c@example.com", size: "S", period: period,
                                    submittedBy: 0, submittedByName: "root", createdAt: 5)
        #expect(RentalStatus(journaledReceived: request).jsonText() == RentalStatus(received: request).jsonText())
        #expect(RentalStatus(journaledReceived: request).askedRequest() == request)
    }
}
