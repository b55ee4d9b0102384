import Foundation
import GRDB
import Intake
import Logging
import Rentals
import Testing
@testable import Allocator
@testable import Notifier
@testable import Spool

/// Extend and end, in process: the allocator's decisions (``AllocationService/decideChange(_:existing:now:_:)``),
/// their idempotency, the version ordering of revisions, and the status/notification mapping
/// that reconcile shares with the allocator.
@Suite struct ChangeTests {
    private func service(units: [StorageUnit] = [StorageUnit(id: "U", size: "S", site: "x")],
                         configuration: SystemConfiguration = SystemConfiguration()) throws -> (AllocationService, Spool) {
        let (_, spool) = try makeSpool()
        let service = try AllocationService(spool: spool, configuration: configuration, logger: Logger(label: "test"))
        try service.store.addUnits(units, sizes: SizeClass.defaults)
        return (service, spool)
    }

    private func request(_ id: String, size: String = "S", _ from: String, _ to: String) -> RentalRequest {
        RentalRequest(id: id, customer: "c-\(id)", contact: "c@example.com", size: size,
                      period: RentalPeriod(start: CalendarDay(iso: from)!, end: CalendarDay(iso: to)!)!,
                      submittedBy: 0, submittedByName: "root", createdAt: 0)
    }

    private func change(_ kind: RentalChange.Kind, _ request: String, _ day: String, id: String = ItemID.generate().rawValue) -> AllocationCommand {
        let change = RentalChange(id: id, kind: kind, request: request, day: CalendarDay(iso: day)!, requestedAt: 1,
                                  requestedBy: 0, requestedByName: "root")
        return kind == .extend ? .extend(change) : .end(change)
    }

    /// The rental row as stored: every column, as text.
    private func row(_ service: AllocationService, _ id: String) throws -> [String: String] {
        let row = try #require(try service.store.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM rental WHERE request_id = ?", arguments: [id])
        })
        var columns: [String: String] = [:]
        for (name, value) in row { columns[name] = value.description }
        return columns
    }

    private func storedStatus(_ service: AllocationService, _ id: String) throws -> RentalStatus {
        let text = try #require(try service.store.read { db in
            try String.fetchOne(db, sql: "SELECT status FROM rental WHERE request_id = ?", arguments: [id])
        })
        return try #require(RentalStatus(document: text))
    }

    private func notifications(_ service: AllocationService) throws -> [CustomerNotification] {
        try service.store.read { db in
            try Data.fetchAll(db, sql: "SELECT payload FROM outbox WHERE kind = 'notify' ORDER BY seq")
        }.map { try JSONDecoder().decode(CustomerNotification.self, from: $0) }
    }

    @Test func anExtensionKeepsTheUnitAndOpensTheNextRevision() throws {
        let (service, _) = try service()
        #expect(try service.decide(.allocate(request("r1", "2099-01-01", "2099-02-01"))) == .assigned(unit: "U"))
        let command = change(.extend, "r1", "2099-03-01", id: "c1")
        guard case .changed(let status) = try service.decide(command) else { Issue.record("not applied"); return }
        #expect(status.to == CalendarDay(iso: "2099-03-01") && status.unit == "U" && status.revision == 1)
        #expect(status.version == 1_002_000)
        #expect(status.change == ChangeOutcome(id: "c1", kind: .extend, day: CalendarDay(iso: "2099-03-01")!, applied: true,
                                               previousTo: CalendarDay(iso: "2099-02-01")!))
        #expect(try service.store.assignments().map(\.period.end) == [CalendarDay(iso: "2099-03-01")!])
        #expect(try storedStatus(service, "r1") == status)
        let sent = try notifications(service).last
        #expect(sent?.kind == .extension && sent?.eventId == "r1-extension-r1" && sent?.status == status)
        #expect(sent?.request.period.end == CalendarDay(iso: "2099-03-01"), "the message shows the new period")
        // Redelivered: the key is processed. Retried by hand with a new id: already until then.
        #expect(try service.decide(command) == .noChange)
        #expect(try service.decide(change(.extend, "r1", "2099-03-01")) == .noChange)
        #expect(try storedStatus(service, "r1") == status)
        #expect(try notifications(service).count == 2, "confirmation and one extension")
    }

    @Test func anExtensionThatCollidesIsRefusedAndChangesNothingButTheStatus() throws {
        let (service, _) = try service()
        _ = try service.decide(.allocate(request("r1", "2099-01-01", "2099-02-01")))
        #expect(try service.decide(.allocate(request("r2", "2099-02-15", "2099-03-15"))) == .assigned(unit: "U"))
        let before = try row(service, "r1"), other = try row(service, "r2"), beforeStatus = try storedStatus(service, "r1")
        let decision = try service.decide(change(.extend, "r1", "2099-03-01", id: "c1"))
        #expect(decision == .refused(reason: "unit U is taken from 2099-02-15"))
        let after = try row(service, "r1")
        for column in ["request_id", "state", "unit_id", "start_day", "end_day", "currency", "amount_minor"] {
            #expect(after[column] == before[column], "\(column) changed")
        }
        #expect(try row(service, "r2") == other, "the other rental is untouched")
        let status = try storedStatus(service, "r1")
        var expected = beforeStatus
        expected.revision = 1
        expected.change = ChangeOutcome(id: "c1", kind: .extend, day: CalendarDay(iso: "2099-03-01")!, applied: false,
                                        reason: "unit U is taken from 2099-02-15", previousTo: CalendarDay(iso: "2099-02-01")!)
        expected.version = RentalStatus.version(revision: 1, step: 2)
        expected.updatedAt = status.updatedAt
        #expect(status == expected, "only revision, change, version and updated_at differ")
        let sent = try notifications(service).last
        #expect(sent?.kind == .extensionRefused && sent?.eventId == "r1-extension-refused-r1")
        // A shorter extension that fits is applied on the same unit.
        guard case .changed(let fits) = try service.decide(change(.extend, "r1", "2099-02-15")) else { Issue.record("refused"); return }
        #expect(fits.unit == "U" && fits.to == CalendarDay(iso: "2099-02-15") && fits.revision == 2)
    }

    @Test func refusalsNameTheirReason() throws {
        var configuration = SystemConfiguration()
        configuration.maxPeriodMonths = 3
        let (service, _) = try service(units: [StorageUnit(id: "U", size: "S", site: "x"), StorageUnit(id: "V", size: "M", site: "x")],
                                       configuration: configuration)
        _ = try service.decide(.allocate(request("r1", "2099-01-01", "2099-02-01")))
        func reason(_ command: AllocationCommand) throws -> String? {
            guard case .refused(let reason) = try service.decide(command) else { return nil }
            return reason
        }
        #expect(try reason(change(.extend, "r1", "2099-04-02"))?.contains("longer than the maximum of 3 months") == true,
                "max_period_months counts from the first day")
        #expect(try reason(change(.extend, "r1", "2099-01-15"))?.contains("use spoolctl end") == true)
        #expect(try reason(change(.end, "r1", "2099-03-01"))?.contains("use spoolctl extend") == true)
        #expect(try reason(change(.end, "r1", "2099-01-01"))?.contains("use spoolctl cancel") == true)
        #expect(try storedStatus(service, "r1").revision == 4, "each refusal of an assigned rental is a revision")
        #expect(try storedStatus(service, "r1").to == CalendarDay(iso: "2099-02-01"))
        try service.store.retireUnit("U")
        #expect(try reason(change(.extend, "r1", "2099-02-10")) == "unit U is out of service")
        #expect(try service.decide(change(.end, "r1", "2099-01-20")) != .noChange, "an end needs no unit in service")
        // Not assigned (cancelled, rejected, unknown): refused, nothing written but the key.
        _ = try service.decide(.cancel(request("r1", "2099-01-01", "2099-01-20"), requestedAt: 2))
        let cancelled = try storedStatus(service, "r1")
        #expect(try reason(change(.extend, "r1", "2099-02-10"))?.contains("is cancelled") == true)
        #expect(try storedStatus(service, "r1") == cancelled)
        let unknown = change(.extend, "nobody", "2099-02-10", id: "c9")
        #expect(try reason(unknown)?.contains("has no rental") == true)
        let keys = try service.store.read { db in try String.fetchAll(db, sql: "SELECT key FROM processed WHERE key LIKE '%nobody%'") }
        #expect(keys.isEmpty, "a change of no rental leaves no key (pruning would take it for a tombstone)")
        #expect(try service.store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM rental WHERE request_id = 'nobody'") } == 0)
    }

    @Test func anEarlyEndReleasesTheRestAndAnEndOnTheEndIsNothing() throws {
        let (service, _) = try service()
        _ = try service.decide(.allocate(request("r1", "2099-01-01", "2099-03-01")))
        #expect(try service.decide(change(.end, "r1", "2099-03-01")) == .noChange)
        guard case .changed(let status) = try service.decide(change(.end, "r1", "2099-02-01", id: "c1")) else { Issue.record("refused"); return }
        #expect(status.to == CalendarDay(iso: "2099-02-01") && status.change?.applied == true && status.revision == 1)
        #expect(try notifications(service).last?.eventId == "r1-end-r1")
        #expect(try service.decide(.allocate(request("r2", "2099-02-01", "2099-03-01"))) == .assigned(unit: "U"), "the rest is free")
        // An end in the past (queued before midnight, decided after) is refused.
        _ = try service.decide(.allocate(request("r3", "2000-01-01", "2000-02-01")))
        let past = try service.decide(change(.end, "r3", "2000-01-15"))
        #expect(past == .refused(reason: "2000-01-15 has passed (today is \(service.today()))"))
        // An extension of a rental that has ended (not yet completed by the daily pass) is refused.
        #expect(try service.decide(change(.extend, "r3", "2000-03-01")) == .refused(reason: "the rental ended on 2000-02-01 (today is \(service.today())): submit a new request"))
    }

    @Test func twoExtensionsInFlightAreDecidedInOrder() throws {
        let (service, _) = try service()
        _ = try service.decide(.allocate(request("r1", "2099-01-01", "2099-02-01")))
        let decisions = try service.decide([change(.extend, "r1", "2099-04-01", id: "c1"), change(.extend, "r1", "2099-03-01", id: "c2")])
        guard case .changed = decisions[0], case .refused(let reason) = decisions[1] else { Issue.record("\(decisions)"); return }
        #expect(reason.contains("already ends on 2099-04-01"))
        let status = try storedStatus(service, "r1")
        #expect(status.to == CalendarDay(iso: "2099-04-01") && status.revision == 2 && status.change?.id == "c2")
        #expect(try service.store.assignments().map(\.period.end) == [CalendarDay(iso: "2099-04-01")!])
    }

    /// A late delivery of revision k − 1 never overwrites revision k; a cancel or a completion
    /// after an extension outranks the extension and its delivery.
    @Test func laterDecisionsOutrankEarlierDeliveries() throws {
        let (service, spool) = try service()
        _ = try service.decide(.allocate(request("r1", "2099-01-01", "2099-02-01")))
        let assigned = try storedStatus(service, "r1")
        guard case .changed(let extended) = try service.decide(change(.extend, "r1", "2099-03-01")) else { Issue.record("refused"); return }
        guard case .changed(let again) = try service.decide(change(.extend, "r1", "2099-04-01")) else { Issue.record("refused"); return }
        let confirmed = assigned.afterDelivery(of: .confirmation, notifiedAt: Timestamp(milliseconds: 5), failure: nil, attempts: 0)
        let firstDelivered = extended.afterDelivery(of: .extension, notifiedAt: Timestamp(milliseconds: 6), failure: nil, attempts: 0)
        let failedLate = extended.afterDelivery(of: .extension, notifiedAt: nil, failure: "x", attempts: 999)
        #expect(confirmed.version < extended.version && firstDelivered.version < again.version && failedLate.version < again.version)
        _ = try service.decide(.cancel(request("r1", "2099-01-01", "2099-04-01"), requestedAt: 7))
        let cancelled = try storedStatus(service, "r1")
        let againDelivered = again.afterDelivery(of: .extension, notifiedAt: Timestamp(milliseconds: 8), failure: nil, attempts: 0)
        #expect(cancelled.version == RentalStatus.version(revision: 2, step: 4) && againDelivered.version < cancelled.version)
        let cancellation = try #require(try notifications(service).last)
        #expect(cancellation.eventId == "r1-cancellation-r2" && cancellation.status == cancelled)
        // Projected in the worst order, the index keeps the cancel.
        let index = try StatusIndex(spool: spool)
        _ = try index.apply([cancelled, again, extended, confirmed, againDelivered, firstDelivered].map { $0.indexEvent() })
        #expect(try index.entity("r1")?.state == "cancelled")
        // A completion after an extension outranks it too.
        _ = try service.decide(.allocate(request("r2", "2099-05-01", "2099-05-10")))
        guard case .changed(let old) = try service.decide(change(.extend, "r2", "2099-05-20")) else { Issue.record("refused"); return }
        #expect(try service.dailyPass(today: CalendarDay(iso: "2099-06-01")!, now: 9).completed == 1)
        let completed = try storedStatus(service, "r2")
        #expect(completed.state == .completed && completed.version == RentalStatus.version(revision: 1, step: 6))
        #expect(old.afterDelivery(of: .extension, notifiedAt: Timestamp(milliseconds: 10), failure: nil, attempts: 0).version < completed.version)
    }

    @Test func reconcileRebuildsTheNotificationAndTheDeliveredStatusOfAChange() throws {
        let (service, spool) = try service()
        _ = try service.decide(.allocate(request("r1", "2099-01-01", "2099-02-01")))
        guard case .changed(let status) = try service.decide(change(.extend, "r1", "2099-03-01")) else { Issue.record("refused"); return }
        let queued = try #require(try notifications(service).last)
        #expect(AllocationService.notification(of: status) == queued, "the requeue of a lost notification is the one queued")
        let delivered = try RecordDirectory(spool: spool, path: "notifier/delivered")
        #expect(AllocationService.afterDelivery(of: status, delivered) == status, "not delivered: unchanged")
        try delivered.write("r1-extension", Array("2099-01-01T00:00:00.000Z".utf8))  // revision 0's name: not this one
        #expect(AllocationService.afterDelivery(of: status, delivered) == status)
        try delivered.write("r1-extension-r1", Array("2026-11-29T10:00:00.000Z".utf8))
        let after = AllocationService.afterDelivery(of: status, delivered)
        #expect(after.state == .confirmed && after.version == 1_003_000 && after.change?.notifiedAt == Timestamp(rfc3339: "2026-11-29T10:00:00.000Z"))
        #expect(after == NotificationService.status(after: status, kind: .extension, notifiedAt: Timestamp(rfc3339: "2026-11-29T10:00:00.000Z"),
                                                    failure: nil, attempts: 0), "reconcile and the notifier agree")
        // A revision-0 decision maps as before issue 11.
        var rejected = RentalStatus(received: request("r9", "2099-01-01", "2099-02-01"))
        rejected.state = .rejected
        rejected.reason = "none"
        rejected.version = RentalStatus.version(step: 2)
        let rejection = try #require(CustomerNotification(decided: rejected, decidedAt: 3))
        #expect(rejection == CustomerNotification(kind: .rejection, request: request("r9", "2099-01-01", "2099-02-01"),
                                                  reason: "none", decidedAt: 3))
    }

    @Test func aChangeAfterTheConfirmationWasDeliveredShowsConfirmed() throws {
        let (service, spool) = try service()
        _ = try service.decide(.allocate(request("r1", "2099-01-01", "2099-02-01")))
        try RecordDirectory(spool: spool, path: "notifier/delivered").write("r1-confirmation", Array("2026-11-29T10:00:00.000Z".utf8))
        guard case .changed(let status) = try service.decide(change(.extend, "r1", "2099-03-01")) else { Issue.record("refused"); return }
        #expect(status.state == .confirmed && status.notifiedAt == Timestamp(rfc3339: "2026-11-29T10:00:00.000Z"))
        #expect(try row(service, "r1")["state"] == "\"assigned\"", "the store's state column stays assigned")
    }

    @Test func eventIDsOfEveryKindAndRevisionNameTheirRequest() {
        #expect(Pruner.request(ofEventID: "abc-confirmation") == "abc")
        #expect(Pruner.request(ofEventID: "abc-extension-refused-r12") == "abc")
        #expect(Pruner.request(ofEventID: "b-00001-end-r3") == "b-00001")
        #expect(Pruner.request(ofEventID: "abc-expiry") == "abc")
        #expect(Pruner.request(ofEventID: "abc-r3") == nil)
        #expect(Pruner.request(ofEventID: "abc") == nil)
        #expect(Pruner.request(ofEventID: "-end") == nil)
    }

    @Test func messagesOfChangesStateTheOutcome() throws {
        let (service, _) = try service()
        _ = try service.decide(.allocate(request("r1", "2099-01-01", "2099-02-01")))
        _ = try service.decide(.allocate(request("r2", "2099-03-01", "2099-04-01")))
        _ = try service.decide(change(.extend, "r1", "2099-02-15"))
        _ = try service.decide(change(.extend, "r1", "2099-03-10"))
        _ = try service.decide(change(.end, "r1", "2099-02-10"))
        let texts = try notifications(service).suffix(3).map { MessageRenderer.render($0, sender: "s@example.com", date: 0) }
        #expect(texts[0].contains("Subject: Rental extended until 2099-02-15") && texts[0].contains("Unit:    U"))
        #expect(texts[0].contains("X-Notification-Kind: extension"))
        #expect(texts[1].contains("Subject: Rental not extended") && texts[1].contains("unit U is taken from 2099-03-01"))
        #expect(texts[1].contains("Your rental is unchanged: unit U until 2099-02-15"))
        #expect(texts[2].contains("Subject: Rental ends on 2099-02-10") && texts[2].contains("released from 2099-02-10"))
    }

    /// A priced rental's cancellation, at revision 0 too, carries its status: the notifier's
    /// rebuild from the request would drop the price from the status it journals.
    @Test func aPricedCancellationKeepsItsPrice() throws {
        var configuration = SystemConfiguration()
        configuration.currency = "EUR"
        let (service, _) = try service(configuration: configuration)
        try service.store.write { db in
            try PriceBook.set(size: "S", site: nil, monthlyMinor: 5000, currency: "EUR", by: "root", now: 1, db)
        }
        _ = try service.decide(.allocate(request("r1", "2099-01-01", "2099-02-01")))
        _ = try service.decide(.cancel(request("r1", "2099-01-01", "2099-02-01"), requestedAt: 2))
        let cancellation = try #require(try notifications(service).last)
        #expect(cancellation.kind == .cancellation && cancellation.eventId == "r1-cancellation")
        #expect(cancellation.status?.price?.totalMinor == 5000)
        let decided = try #require(cancellation.status)
        let delivered = NotificationService.status(after: decided, kind: .cancellation, notifiedAt: Timestamp(milliseconds: 3), failure: nil, attempts: 0)
        #expect(delivered.price?.totalMinor == 5000 && delivered.version == RentalStatus.version(step: 5))
    }
}
