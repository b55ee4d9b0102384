import Foundation
import GRDB
import Rentals
import Spool
import Synchronization

/// The allocator's side of the waiting list (``Waitlist``): waitlisting a request no unit is
/// free for, cancelling a waiting request, and promoting waiting requests when a cancel frees a
/// unit. Each runs inside the transaction of the command that causes it (see
/// ``AllocationService/decide(_:now:)-(AllocationCommand,_)``).
extension AllocationService {
    /// The end of a rejection's reason when the request asked to wait but its period starts
    /// today or earlier (as the allocator counts days): it could never be assigned before it
    /// started, so it is rejected as any other request.
    static let tooLateForTheWaitlist = "too late for the waiting list: the period starts before tomorrow"

    /// Waitlists `request` (no unit fits it) with `reason` as the status's reason, when its
    /// period starts after today: rental row `waitlisted`, waitlist row, and in the outbox its
    /// status (revision 0, step 2) and a `waitlisted` notification carrying it. Nil (nothing
    /// written) when it starts today or earlier: the caller rejects it.
    func waitlist(_ request: RentalRequest, status: inout RentalStatus, reason: String, now: Int64, _ db: Database) throws -> Decision? {
        guard request.period.start > today(now: now) else { return nil }
        status.reason = reason
        status.alternative = nil
        try Waitlist.add(request, status: &status, now: now, db)
        var notification = CustomerNotification(kind: .waitlisted, request: request, site: request.site, reason: reason, decidedAt: now)
        notification.status = status
        try enqueueOutbox(status, notification, db)
        return .waitlisted
    }

    /// Cancels waiting request `request`: state `cancelled` (step 4 of its revision), off the
    /// waiting list, and a `cancellation` notification carrying the status. Frees nothing.
    func cancelWaitlisted(_ request: RentalRequest, requestedAt: Int64, now: Int64, _ db: Database) throws -> Decision {
        var status = try Waitlist.waitingStatus(request.id, db)
        status.state = .cancelled
        status.waitlist = nil
        status.reason = nil
        status.notifiedAt = nil
        status.cancelRequestedAt = Timestamp(milliseconds: requestedAt)
        status.updatedAt = Timestamp(milliseconds: now)
        status.version = RentalStatus.version(revision: status.revision, step: 4)
        status.attempts = 0
        status.lastError = nil
        try db.execute(sql: "UPDATE rental SET state = 'cancelled', status = ?, updated_at = ? WHERE request_id = ?",
                       arguments: [status.jsonText(), now, request.id])
        try Waitlist.remove(request.id, db)
        var notification = CustomerNotification(kind: .cancellation, request: Waitlist.request(of: status, site: request.site ?? status.site),
                                                decidedAt: now)
        notification.status = status
        try enqueueOutbox(status, notification, db)
        return .cancelled
    }

    /// The cancellation notification of an assigned rental in `status` (cancelled). At revision
    /// 0 it is the message it always was (rebuilt by the notifier from the request); after a
    /// promotion or a change (revision above 0) it carries the status and a revision's event id,
    /// so the notifier's step after it keeps the revision.
    func cancellation(of status: RentalStatus, request: RentalRequest, now: Int64) -> CustomerNotification {
        var notification = CustomerNotification(kind: .cancellation, request: request, unit: status.unit, site: status.site, decidedAt: now)
        if status.revision > 0 {
            notification.eventId = CustomerNotification.eventID(request: status.id, kind: .cancellation, revision: status.revision)
            notification.status = status
        }
        if status.price != nil { notification.status = status }  // X: else the notifier's rebuild loses the price
        return notification
    }

    /// Promotes waiting requests onto unit `id`, just released in this transaction (a cancel,
    /// an end): see ``Waitlist/promote(freed:today:now:configuration:_:)``. Returns the promoted ids.
    @discardableResult
    func promoteAfterRelease(unit id: String?, now: Int64, _ db: Database) throws -> [String] {
        guard let id, let unit = try StorageUnit.fetchOne(db, sql: "SELECT id, size, site, in_service FROM unit WHERE id = ?", arguments: [id])
        else { return [] }
        return try Waitlist.promote(freed: [unit], today: today(now: now), now: now, configuration: configuration, db)
    }
}

/// The promotion that follows an inventory change made by `spoolctl units` (add, change,
/// import, reinstate): passed to the ``AllocatorStore`` inventory methods as their
/// `afterChange` closure, it runs in the change's transaction, so the new capacity and the
/// promotions it allows commit together (the saturation invariant holds after the commit). The
/// promotions' messages wait in the store's outbox until the allocator's next tick publishes
/// them (at most its heartbeat interval, 10 s by default).
public final class WaitlistPromotion: Sendable {
    let configuration: SystemConfiguration
    let units: [String]
    let today: CalendarDay
    private let result = Mutex<[String]>([])

    /// A promotion for units `ids` (as they are after the change), deciding with the clock's
    /// date (`spoolctl` never applies the allocator's test day offset).
    public init(units ids: [String], configuration: SystemConfiguration, today: CalendarDay = .today()) {
        self.configuration = configuration
        units = ids
        self.today = today
    }

    /// The requests promoted by the last run of ``hook``.
    public var promoted: [String] { result.withLock { $0 } }

    /// The closure for the store's inventory methods.
    public var hook: AllocatorStore.InventoryHook {
        { [self] db in
            var freed: [StorageUnit] = []
            for id in units {
                if let unit = try StorageUnit.fetchOne(db, sql: "SELECT id, size, site, in_service FROM unit WHERE id = ?", arguments: [id]) {
                    freed.append(unit)
                }
            }
            let ids = try Waitlist.promote(freed: freed, today: today, now: Clock.nowMilliseconds(), configuration: configuration, db)
            result.withLock { $0 = ids }
        }
    }
}
