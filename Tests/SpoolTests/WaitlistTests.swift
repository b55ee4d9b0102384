import Foundation
import GRDB
import Intake
import Logging
import Rentals
import Testing
@testable import Allocator
@testable import Spool

/// The waiting list's decisions, in process (``Waitlist``): waitlisting, first come first
/// served per size and site, promotion in the releasing transaction, cancel, expiry.
@Suite struct WaitlistTests {
    private func service(units: [StorageUnit]) throws -> AllocationService {
        let (_, spool) = try makeSpool()
        let service = try AllocationService(spool: spool, configuration: SystemConfiguration(), logger: Logger(label: "test"))
        try service.store.addUnits(units, sizes: SizeClass.defaults)
        return service
    }

    private func request(_ id: String, size: String = "S", _ from: String, _ to: String, site: String? = nil,
                         waitlist: Bool = true) -> RentalRequest {
        RentalRequest(id: id, customer: "c-\(id)", contact: "c@example.com", size: size,
                      period: RentalPeriod(start: CalendarDay(iso: from)!, end: CalendarDay(iso: to)!)!,
                      submittedBy: 0, submittedByName: "root", createdAt: 0, site: site, waitlist: waitlist)
    }

    private func unit(_ id: String, _ site: String = "x", size: String = "S") -> StorageUnit {
        StorageUnit(id: id, size: size, site: site)
    }

    /// The notifications in the outbox, in order.
    private func notifications(_ service: AllocationService) throws -> [CustomerNotification] {
        try service.store.read { db in
            try Data.fetchAll(db, sql: "SELECT payload FROM outbox WHERE kind = 'notify' ORDER BY seq")
        }.map { try JSONDecoder().decode(CustomerNotification.self, from: $0) }
    }

    private func stored(_ service: AllocationService, _ id: String) throws -> (state: String, status: RentalStatus) {
        let row = try #require(try service.store.read { db in
            try Row.fetchOne(db, sql: "SELECT state, status FROM rental WHERE request_id = ?", arguments: [id])
        })
        return (row["state"], try #require(RentalStatus(document: row["status"])))
    }

    private func waiting(_ service: AllocationService) throws -> [String] {
        try service.store.read { db in try String.fetchAll(db, sql: "SELECT request_id FROM waitlist ORDER BY seq") }
    }

    /// The saturation invariant: no waiting request starting after `today` fits a free unit.
    private func expectSaturated(_ service: AllocationService, today: CalendarDay = .today(), sourceLocation: SourceLocation = #_sourceLocation) throws {
        let fitting = try service.store.read { db in
            try Row.fetchAll(db, sql: "SELECT request_id, size, site, start_day, end_day FROM waitlist WHERE start_day > ?",
                             arguments: [today.daysSinceEpoch]).filter { row in
                try Waitlist.bestUnit(size: row["size"], period: AllocatorStore.period(row), site: row["site"], db) != nil
            }.map { $0["request_id"] as String }
        }
        #expect(fitting.isEmpty, "waiting requests fit a free unit: \(fitting)", sourceLocation: sourceLocation)
    }

    @Test func noFreeUnitWaitlistsAndACancelPromotesInTheSameTransaction() throws {
        let service = try service(units: [unit("U")])
        let holder = request("holder", "2099-01-01", "2099-02-01", waitlist: false)
        #expect(try service.decide(.allocate(holder)) == .assigned(unit: "U"))
        let waiter = request("waiter", "2099-01-10", "2099-01-20")
        #expect(try service.decide(.allocate(waiter), now: 5000) == .waitlisted)
        let waiting = try stored(service, "waiter")
        #expect(waiting.state == "waitlisted")
        #expect(waiting.status.state == .waitlisted && waiting.status.unit == nil)
        #expect(waiting.status.waitlist == WaitlistPlace(since: Timestamp(milliseconds: 5000), position: 1))
        #expect(waiting.status.version == RentalStatus.version(step: 2))
        #expect(waiting.status.reason?.hasPrefix("no S unit is free") == true)
        let told = try #require(try notifications(service).last)
        #expect(told.kind == .waitlisted && told.eventId == "waiter-waitlisted" && told.status == waiting.status)

        #expect(try service.decide(.cancel(holder, requestedAt: 1), now: 9000) == .cancelled)
        let promoted = try stored(service, "waiter")
        #expect(promoted.state == "assigned")
        #expect(promoted.status.state == .assigned && promoted.status.unit == "U" && promoted.status.site == "x")
        #expect(promoted.status.revision == 1 && promoted.status.version == RentalStatus.version(revision: 1, step: 2))
        #expect(promoted.status.waitlist == nil && promoted.status.reason == nil && promoted.status.notifiedAt == nil)
        #expect(try self.waiting(service).isEmpty)
        let confirmation = try #require(try notifications(service).last)
        #expect(confirmation.kind == .confirmation && confirmation.eventId == "waiter-confirmation-r1")
        #expect(confirmation.status == promoted.status && confirmation.unit == "U")
        #expect(try service.store.assignments().map(\.request) == ["waiter"])
        try expectSaturated(service)
        // Published: the index shows the promotion.
        try service.drainOutbox()
        #expect(try service.index.entity("waiter")?.state == "assigned")
        #expect(try service.index.entity("waiter")?.version == RentalStatus.version(revision: 1, step: 2))
    }

    @Test func oldestFittingFirstPerSizeAndSite() throws {
        let service = try service(units: [unit("U", "x"), unit("M1", "x", size: "M")])
        let holder = request("holder", "2099-01-01", "2099-02-01", waitlist: false)
        #expect(try service.decide(.allocate(holder)) == .assigned(unit: "U"))
        // Oldest first: at site y (no unit there), at x, any site; and one of another size.
        #expect(try service.decide(.allocate(request("w-y", "2099-01-05", "2099-01-25", site: "y"))) == .waitlisted)
        #expect(try service.decide(.allocate(request("w-x", "2099-01-05", "2099-01-25", site: "x"))) == .waitlisted)
        #expect(try service.decide(.allocate(request("w-any", "2099-01-05", "2099-01-25"))) == .waitlisted)
        #expect(try stored(service, "w-any").status.waitlist?.position == 3, "site-less: behind every request of its size")
        #expect(try stored(service, "w-x").status.waitlist?.position == 1, "at x: behind no request that could take a unit at x")
        #expect(try service.decide(.cancel(holder, requestedAt: 1)) == .cancelled)
        #expect(try stored(service, "w-x").state == "assigned", "the oldest request that may take a unit at x wins")
        #expect(try waiting(service) == ["w-y", "w-any"])
        try expectSaturated(service)
    }

    @Test func aRequestWithoutASiteTakesAUnitAtAnySite() throws {
        let service = try service(units: [unit("X1", "x"), unit("Y1", "y")])
        let atX = request("at-x", "2099-03-01", "2099-04-01", waitlist: false)
        let atY = request("at-y", "2099-03-01", "2099-04-01", waitlist: false)
        #expect(try service.decide(.allocate(atX)) == .assigned(unit: "X1"))
        #expect(try service.decide(.allocate(atY)) == .assigned(unit: "Y1"))
        #expect(try service.decide(.allocate(request("only-x", "2099-03-01", "2099-04-01", site: "x"))) == .waitlisted)
        #expect(try service.decide(.allocate(request("anywhere", "2099-03-01", "2099-04-01"))) == .waitlisted)
        #expect(try service.decide(.cancel(atY, requestedAt: 1)) == .cancelled)
        #expect(try stored(service, "anywhere").status.unit == "Y1", "the site-less request takes the unit at y")
        #expect(try stored(service, "only-x").state == "waitlisted", "a request for x never gets a unit at y")
        #expect(try service.decide(.cancel(atX, requestedAt: 1)) == .cancelled)
        #expect(try stored(service, "only-x").status.unit == "X1")
        try expectSaturated(service)
    }

    @Test func aSiteRestrictsAnOrdinaryAllocateToo() throws {
        let service = try service(units: [unit("X1", "x")])
        guard case .rejected(let reason) = try service.decide(.allocate(request("r", "2099-03-01", "2099-04-01", site: "y", waitlist: false))) else {
            Issue.record("a request for site y was not rejected")
            return
        }
        #expect(reason.contains("no S unit is free"))
        #expect(try service.decide(.allocate(request("s", "2099-03-01", "2099-04-01", site: "x", waitlist: false))) == .assigned(unit: "X1"))
    }

    @Test func anOlderRequestThatDoesNotFitBlocksNoYoungerOne() throws {
        let service = try service(units: [unit("U")])
        let first = request("first", "2099-01-01", "2099-03-01", waitlist: false)
        let second = request("second", "2099-03-01", "2099-04-01", waitlist: false)
        #expect(try service.decide(.allocate(first)) == .assigned(unit: "U"))
        #expect(try service.decide(.allocate(second)) == .assigned(unit: "U"))
        #expect(try service.decide(.allocate(request("long", "2099-01-15", "2099-03-15"))) == .waitlisted)
        #expect(try service.decide(.allocate(request("short", "2099-02-01", "2099-02-10"))) == .waitlisted)
        #expect(try service.decide(.allocate(request("later", "2099-02-12", "2099-02-20"))) == .waitlisted)
        #expect(try service.decide(.cancel(first, requestedAt: 1)) == .cancelled)
        #expect(try waiting(service) == ["long"], "the long one still collides with `second`; both short ones fit")
        #expect(try service.store.assignments().map(\.request) == ["short", "later", "second"])
        try expectSaturated(service)
    }

    @Test func tooLateForTheWaitingListIsARejection() throws {
        let service = try service(units: [unit("U")])
        let today = CalendarDay.today()
        let holder = RentalRequest(id: "holder", customer: "c", contact: "c@example.com", size: "S",
                                   period: RentalPeriod(start: today, end: today.adding(days: 30))!, submittedBy: 0,
                                   submittedByName: "root", createdAt: 0)
        #expect(try service.decide(.allocate(holder)) == .assigned(unit: "U"))
        var late = holder
        late.id = "late"
        late.waitlist = true
        guard case .rejected(let reason) = try service.decide(.allocate(late)) else {
            Issue.record("a request starting today was waitlisted")
            return
        }
        #expect(reason.hasSuffix(AllocationService.tooLateForTheWaitlist))
        #expect(try waiting(service).isEmpty)
        var tomorrow = late
        tomorrow.id = "tomorrow"
        tomorrow.period = RentalPeriod(start: today.adding(days: 1), end: today.adding(days: 5))!
        #expect(try service.decide(.allocate(tomorrow)) == .waitlisted)
    }

    @Test func cancelOfAWaitingRequestTakesItOffTheList() throws {
        let service = try service(units: [unit("U")])
        let holder = request("holder", "2099-01-01", "2099-02-01", waitlist: false)
        #expect(try service.decide(.allocate(holder)) == .assigned(unit: "U"))
        let waiter = request("waiter", "2099-01-01", "2099-02-01")
        #expect(try service.decide(.allocate(waiter)) == .waitlisted)
        #expect(try service.decide(.cancel(waiter, requestedAt: 7000), now: 8000) == .cancelled)
        #expect(try service.decide(.cancel(waiter, requestedAt: 7000)) == .noChange)
        let cancelled = try stored(service, "waiter")
        #expect(cancelled.state == "cancelled" && cancelled.status.state == .cancelled && cancelled.status.waitlist == nil)
        #expect(cancelled.status.version == RentalStatus.version(step: 4))
        #expect(cancelled.status.cancelRequestedAt == Timestamp(milliseconds: 7000))
        let message = try #require(try notifications(service).last)
        #expect(message.kind == .cancellation && message.eventId == "waiter-cancellation" && message.status == cancelled.status)
        #expect(try waiting(service).isEmpty)
        #expect(try service.decide(.cancel(holder, requestedAt: 1)) == .cancelled)
        #expect(try service.store.assignments().isEmpty, "a cancelled waiting request is never promoted")
    }

    @Test func theDailyPassExpiresWaitingRequestsAtTheirStart() throws {
        let service = try service(units: [unit("U")])
        #expect(try service.decide(.allocate(request("holder", "2099-01-01", "2099-03-01", waitlist: false))) == .assigned(unit: "U"))
        #expect(try service.decide(.allocate(request("soon", "2099-01-10", "2099-01-20"))) == .waitlisted)
        #expect(try service.decide(.allocate(request("later", "2099-02-10", "2099-02-20"))) == .waitlisted)
        #expect(try service.dailyPass(today: CalendarDay(iso: "2099-01-09")!, now: 1).expired == 0)
        let pass = try service.dailyPass(today: CalendarDay(iso: "2099-01-10")!, now: 2)
        #expect(pass.expired == 1 && pass.completed == 0)
        let expired = try stored(service, "soon")
        #expect(expired.state == "expired" && expired.status.state == .expired && expired.status.waitlist == nil)
        #expect(expired.status.version == RentalStatus.version(step: 4))
        #expect(expired.status.reason == "no S unit became free before 2099-01-10")
        let message = try #require(try notifications(service).last)
        #expect(message.kind == .expiry && message.eventId == "soon-expiry" && message.status == expired.status)
        #expect(try waiting(service) == ["later"])
        #expect(try service.dailyPass(today: CalendarDay(iso: "2099-01-10")!, now: 3).expired == 0, "idempotent")
        #expect(try service.decide(.cancel(request("soon", "2099-01-10", "2099-01-20"), requestedAt: 1)) == .noChange,
                "an expired request has nothing to cancel")
        #expect(RetentionPolicy.isFinished(expired.status) == false, "finished once the customer is notified")
    }

    @Test func aRequestWhoseStartHasComeIsNotPromotedEvenBeforeThePass() throws {
        let service = try service(units: [unit("U")])
        let today = CalendarDay.today()
        let holder = RentalRequest(id: "holder", customer: "c", contact: "c@example.com", size: "S",
                                   period: RentalPeriod(start: today.adding(days: 1), end: today.adding(days: 30))!,
                                   submittedBy: 0, submittedByName: "root", createdAt: 0)
        #expect(try service.decide(.allocate(holder)) == .assigned(unit: "U"))
        var waiter = holder
        waiter.id = "waiter"
        waiter.waitlist = true
        #expect(try service.decide(.allocate(waiter)) == .waitlisted)
        // The allocator's today moves to the waiter's start (the store is shared: a second service).
        let later = try AllocationService(spool: service.store.spool, configuration: SystemConfiguration(), logger: Logger(label: "test"),
                                          dayOffset: 1)
        #expect(try later.decide(.cancel(holder, requestedAt: 1)) == .cancelled)
        #expect(try stored(later, "waiter").state == "waitlisted", "starts today: no longer promotable")
        #expect(try later.dailyPass().expired == 1)
    }

    @Test func unitsAddedChangedOrReinstatedPromoteInTheirTransaction() throws {
        let service = try service(units: [unit("U")])
        let holder = request("holder", "2099-01-01", "2099-02-01", waitlist: false)
        #expect(try service.decide(.allocate(holder)) == .assigned(unit: "U"))
        for id in ["w1", "w2", "w3", "w4"] { #expect(try service.decide(.allocate(request(id, "2099-01-01", "2099-02-01"))) == .waitlisted) }
        let configuration = SystemConfiguration()
        var promotion = WaitlistPromotion(units: ["NEW"], configuration: configuration)
        try service.store.addUnits([unit("NEW")], sizes: SizeClass.defaults, afterChange: promotion.hook)
        #expect(promotion.promoted == ["w1"])
        try service.store.addUnits([unit("BIG", size: "M")], sizes: SizeClass.defaults)
        promotion = WaitlistPromotion(units: ["BIG"], configuration: configuration)
        try service.store.changeUnit("BIG", size: "S", site: nil, sizes: SizeClass.defaults, afterChange: promotion.hook)
        #expect(promotion.promoted == ["w2"])
        try service.store.retireUnit("U")
        #expect(try service.decide(.cancel(holder, requestedAt: 1)) == .cancelled)
        #expect(try waiting(service) == ["w3", "w4"], "a retired unit takes nobody")
        promotion = WaitlistPromotion(units: ["U"], configuration: configuration)
        try service.store.reinstateUnit("U", afterChange: promotion.hook)
        #expect(promotion.promoted == ["w3"])
        #expect(try stored(service, "w3").status.unit == "U")
        try expectSaturated(service)
        // A hook that fails rolls the change back.
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try service.store.addUnits([unit("GONE")], sizes: SizeClass.defaults, afterChange: { _ in throw Refused() })
        }
        #expect(try service.store.units().map(\.id).contains("GONE") == false)
        #expect(throws: InventoryError.unknownUnit("NOPE")) { try service.store.reinstateUnit("NOPE") }
    }

    @Test func aCancelAfterAPromotionKeepsTheRevision() throws {
        let service = try service(units: [unit("U")])
        let holder = request("holder", "2099-01-01", "2099-02-01", waitlist: false)
        #expect(try service.decide(.allocate(holder)) == .assigned(unit: "U"))
        let waiter = request("waiter", "2099-01-01", "2099-02-01")
        #expect(try service.decide(.allocate(waiter)) == .waitlisted)
        #expect(try service.decide(.cancel(holder, requestedAt: 1)) == .cancelled)
        #expect(try service.decide(.cancel(waiter, requestedAt: 2)) == .cancelled)
        let cancelled = try stored(service, "waiter")
        #expect(cancelled.status.version == RentalStatus.version(revision: 1, step: 4), "above the promotion's step 2 and 3")
        let message = try #require(try notifications(service).last)
        #expect(message.kind == .cancellation && message.eventId == "waiter-cancellation-r1" && message.status == cancelled.status)
        #expect(try service.dailyPass(today: CalendarDay(iso: "2099-03-01")!, now: 1).completed == 0)
    }

    @Test func completionKeepsThePromotionsRevision() throws {
        let service = try service(units: [unit("U")])
        let holder = request("holder", "2099-01-01", "2099-02-01", waitlist: false)
        #expect(try service.decide(.allocate(holder)) == .assigned(unit: "U"))
        #expect(try service.decide(.allocate(request("waiter", "2099-01-01", "2099-02-01"))) == .waitlisted)
        #expect(try service.decide(.cancel(holder, requestedAt: 1)) == .cancelled)
        #expect(try service.dailyPass(today: CalendarDay(iso: "2099-02-01")!, now: 1).completed == 1)
        #expect(try stored(service, "waiter").status.version == RentalStatus.version(revision: 1, step: 6))
    }

    @Test func aPromotionIsPricedAtTheRateInForceWhenItIsMade() throws {
        let (_, spool) = try makeSpool()
        var configuration = SystemConfiguration()
        configuration.currency = "EUR"
        let service = try AllocationService(spool: spool, configuration: configuration, logger: Logger(label: "test"))
        try service.store.addUnits([unit("U")], sizes: SizeClass.defaults)
        try service.store.write { db in try PriceBook.set(size: "S", site: nil, monthlyMinor: 5000, currency: "EUR", by: "root", now: 1, db) }
        let holder = request("holder", "2099-01-01", "2099-03-01", waitlist: false)
        #expect(try service.decide(.allocate(holder)) == .assigned(unit: "U"))
        #expect(try service.decide(.allocate(request("waiter", "2099-01-01", "2099-03-01"))) == .waitlisted)
        #expect(try stored(service, "waiter").status.price == nil, "no price while waiting")
        try service.store.write { db in try PriceBook.set(size: "S", site: nil, monthlyMinor: 7000, currency: "EUR", by: "root", now: 2, db) }
        #expect(try service.decide(.cancel(holder, requestedAt: 1)) == .cancelled)
        let promoted = try stored(service, "waiter").status
        #expect(promoted.price?.totalMinor == 14000 && promoted.price?.lines.first?.monthlyRateMinor == 7000)
        let column = try service.store.read { db in
            try Row.fetchOne(db, sql: "SELECT currency, amount_minor FROM rental WHERE request_id = 'waiter'")
        }
        #expect(column?["currency"] == "EUR" && column?["amount_minor"] == 14000 as Int64)
        let message = try #require(try notifications(service).last)
        #expect(message.status?.price == promoted.price)
    }

    /// A waiting list of thousands: a cancel still promotes exactly the oldest fitting requests
    /// and keeps the list saturated; its cost is reported (measured against a cancel with nobody
    /// waiting, as a ratio in the same run; never asserted).
    @Test func aLongWaitingListPromotesTheOldestFittingOnes() throws {
        let service = try service(units: [unit("U"), unit("V", "y"), unit("M1", size: "M")])
        let holder = request("holder", "2099-01-01", "2099-12-01", waitlist: false)
        let other = request("other", "2099-01-01", "2099-12-01", waitlist: false)
        #expect(try service.decide(.allocate(holder)) == .assigned(unit: "U"))
        #expect(try service.decide(.allocate(other)) == .assigned(unit: "V"))
        // 3,000 waiting: most collide with `other`'s unit only (site y), some want dates the
        // freed unit cannot give (after a late holding), a few fit.
        let late = request("late", "2099-12-01", "2099-12-31", waitlist: false)
        #expect(try service.decide(.allocate(late)) == .assigned(unit: "U"))
        var commands: [AllocationCommand] = []
        for index in 0..<3000 {
            let day = CalendarDay(iso: "2099-01-01")!.adding(days: index % 300)
            let site: String? = index % 3 == 0 ? nil : (index % 3 == 1 ? "y" : "x")
            let end = index % 7 == 0 ? CalendarDay(iso: "2099-12-15")! : day.adding(days: 5)
            commands.append(.allocate(request(String(format: "w%04d", index), "\(day)", "\(end)", site: site)))
        }
        #expect(try service.decide(commands).allSatisfy { $0 == .waitlisted })
        let baselineHolder = request("b", size: "M", "2099-01-01", "2099-02-01", waitlist: false)
        #expect(try service.decide(.allocate(baselineHolder)) == .assigned(unit: "M1"))
        let baselineStart = ContinuousClock.now
        #expect(try service.decide(.cancel(baselineHolder, requestedAt: 1)) == .cancelled)
        let baseline = ContinuousClock.now - baselineStart
        let start = ContinuousClock.now
        #expect(try service.decide(.cancel(holder, requestedAt: 1)) == .cancelled)
        let elapsed = ContinuousClock.now - start
        // The oldest fitting at x or any site, in order, each on U where free: a reference replay.
        var free: [RentalPeriod] = [RentalPeriod(start: CalendarDay(iso: "2099-01-01")!, end: CalendarDay(iso: "2099-12-01")!)!]
        var expected: [String] = []
        for case .allocate(let waiting) in commands where waiting.site != "y" {
            guard let slot = free.firstIndex(where: { $0.start <= waiting.period.start && waiting.period.end <= $0.end }) else { continue }
            let gap = free.remove(at: slot)
            if let before = RentalPeriod(start: gap.start, end: waiting.period.start) { free.append(before) }
            if let after = RentalPeriod(start: waiting.period.end, end: gap.end) { free.append(after) }
            expected.append(waiting.id)
        }
        let promoted = try service.store.assignments().filter { $0.unit == "U" }.map(\.request).filter { $0.hasPrefix("w") }
        #expect(Set(promoted) == Set(expected) && !expected.isEmpty)
        try expectSaturated(service)
        FileHandle.standardError.write(Data(
            "waitlist: cancel promoting \(promoted.count) of 3000 waiting took \(elapsed) (a cancel with nobody waiting: \(baseline))\n".utf8))
    }

    /// A cancel of a waiting request whose queue item was lost (journaled by the front door,
    /// never decided) is queued again by reconcile, as one of an assigned rental is.
    @Test func reconcileQueuesAgainTheLostCancelOfAWaitingRequest() throws {
        let (_, spool) = try makeSpool()
        let service = try AllocationService(spool: spool, configuration: SystemConfiguration(), logger: Logger(label: "test"))
        try service.store.addUnits([unit("U")], sizes: SizeClass.defaults)
        #expect(try service.decide(.allocate(request("holder", "2099-01-01", "2099-02-01", waitlist: false))) == .assigned(unit: "U"))
        #expect(try service.decide(.allocate(request("waiter", "2099-01-01", "2099-02-01"))) == .waitlisted)
        try service.drainOutbox()
        var asked = try #require(try service.index.entity("waiter").flatMap { RentalStatus(document: $0.document) })
        #expect(asked.state == .waitlisted)
        asked.cancelRequestedAt = Timestamp(milliseconds: 77)
        asked.version += 1
        try service.journal.append([asked.indexEvent().encoded()], durability: .durable)
        try service.index.catchUp(from: service.journal)
        let lost = try service.requeueLostItems(spool: spool)
        #expect(lost.commands == ["waiter"])
        let queue = try spool.queue(.allocation, retry: RetryPolicy(maxAttempts: 5))
        let commands = try queue.queuedPayloads().compactMap { try? JSONDecoder().decode(AllocationCommand.self, from: Data($0)) }
        #expect(try service.decide(commands) == [.cancelled])
        #expect(try stored(service, "waiter").state == "cancelled")
        try service.drainOutbox()
        #expect(try service.requeueLostItems(spool: spool).commands.isEmpty, "decided: not queued again")
    }

    @Test func theFrontDoorChecksASitesSyntax() throws {
        func form(_ site: String) -> RentalForm {
            RentalForm(customer: "c1", contact: "+4915112345678", size: "S", from: "2099-01-01", months: 1, site: site, waitlist: true)
        }
        let configuration = SystemConfiguration()
        #expect(try form("Site S").validate(configuration).size.name == "S")
        #expect(try form(String(repeating: "é", count: 64)).validate(configuration).size.name == "S")
        for bad in ["", String(repeating: "x", count: 65), "a\nb", "main\u{1b}[2J", "tab\there", "a\u{85}b", "a\u{2028}b"] {
            #expect(throws: IntakeError.self, "\(bad.debugDescription)") { try form(bad).validate(configuration) }
        }
    }
}
