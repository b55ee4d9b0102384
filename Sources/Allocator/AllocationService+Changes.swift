import Foundation
import GRDB
import Rentals
import Spool

/// Extend and end (`spoolctl extend`, `spoolctl end`): the allocator's half of the change saga.
///
/// A change is decided in the caller's write transaction, the one that records its key
/// (`extend:<request>:<change id>`, `end:<request>:<change id>`) as processed, so a redelivered
/// change decides nothing twice. Then, in that same transaction:
///
/// - **no rental row, or a rental no longer assigned** (cancelled, completed, waitlisted,
///   rejected, expired, pruned): refused, and nothing but the key is written (a change never
///   creates a row, so the retention pruning needs no tombstone for its key);
/// - **the day already is the rental's end**: nothing to do (applied before under another id,
///   or retried by hand);
/// - **applied**: `rental.end_day` moves (an extension only after ``Availability/isUnitFree(_:period:excluding:_:)``
///   found the same unit free for the added days, so the store's invariant holds: the assigned
///   rentals of a unit never overlap), the price follows (an extension adds a line at the rate
///   in force now, an end re-prices the cut line), an early end offers the freed days to the
///   waiting list, and the status gains revision + 1 with `change` (`applied: true`);
/// - **refused** (unit taken, out of service, period too long, day no longer valid, too many
///   changes): the row, unit, end and price stay byte-identical; the status gains revision + 1
///   with `change` (`applied: false`, `reason`), so the refusal is visible and versioned.
///
/// Every applied or refused change puts its status (version `revision × 10⁶ + 2000`) and its
/// notification (`extension`, `end` or `extension-refused`, carrying the status) in the outbox.
extension AllocationService {
    /// Decides `change` for the rental row `existing` (nil: none) in `db`.
    func decideChange(_ change: RentalChange, existing: Row?, now: Int64, _ db: Database) throws -> Decision {
        guard let existing else {
            // Nothing to record: the key goes again, so a change never leaves a key without a
            // row (the retention pruning would take it for a tombstone), and a redelivery finds
            // no row again and decides the same.
            let command: AllocationCommand = change.kind == .extend ? .extend(change) : .end(change)
            try db.execute(sql: "DELETE FROM processed WHERE key = ?", arguments: [command.idempotencyKey])
            return .refused(reason: "request \(change.request) has no rental to change")
        }
        let state = try existing.decode(String.self, forColumn: "state")
        guard state == "assigned" else { return .refused(reason: "request \(change.request) is \(state): only an assigned rental can be changed") }
        guard var status = RentalStatus(document: try existing.decode(String.self, forColumn: "status")),
              let unit = status.unit else {
            throw StoredContentDamage("the status of rental \(change.request) does not decode or names no unit")
        }
        if change.day == status.to { return .noChange }
        guard status.revision < RentalStatus.maximumRevision else {
            // No higher version is left to show a refusal with: the key alone records it.
            return .refused(reason: "too many changes")
        }
        let previous = status
        let today = self.today(now: now)
        var refusal: String?
        switch change.kind {
        case .extend:
            refusal = try extensionRefusal(change, status: status, unit: unit, today: today, db)
            if refusal == nil {
                switch try extendedPrice(status, to: change.day, db) {
                case .refused(let reason): refusal = reason
                case .priced(let price):
                    status.to = change.day
                    status.price = price
                }
            }
        case .end:
            refusal = endRefusal(change, status: status, today: today)
            if refusal == nil {
                status.to = change.day
                status.price = endedPrice(status.price, on: change.day)
            }
        }
        status.revision += 1
        status.change = ChangeOutcome(id: change.id, kind: change.kind, day: change.day, applied: refusal == nil,
                                      reason: refusal, previousTo: previous.to)
        status.version = RentalStatus.version(revision: status.revision, step: 2)
        status.updatedAt = Timestamp(milliseconds: now)
        status.attempts = 0
        status.lastError = nil
        if status.state == .assigned, let delivery = deliveredAt(of: previous) {
            // The customer was told of the status the store held: the rental shows confirmed.
            status.state = .confirmed
            if status.notifiedAt == nil { status.notifiedAt = delivery }
        }
        if refusal == nil {
            try db.execute(sql: "UPDATE rental SET end_day = ?, status = ?, updated_at = ? WHERE request_id = ? AND state = 'assigned'",
                           arguments: [status.to.daysSinceEpoch, status.jsonText(), now, change.request])
            try recordPrice(status.price, request: change.request, db)
        } else {
            try db.execute(sql: "UPDATE rental SET status = ?, updated_at = ? WHERE request_id = ? AND state = 'assigned'",
                           arguments: [status.jsonText(), now, change.request])
        }
        guard let notification = CustomerNotification(decided: status, decidedAt: now) else {
            throw StoredContentDamage("rental \(change.request) has no notification for its change")  // unreachable: assigned
        }
        try enqueueOutbox(status, notification, db)
        if let refusal { return .refused(reason: refusal) }
        if change.kind == .end {
            // The freed days [day, previous to) go to the waiting list in this transaction.
            try promoteAfterEnd(status, now: now, db)
        }
        return .changed(status)
    }

    /// Why extending the rental in `status` (on `unit`) to `change.day` is refused; nil when it
    /// may be applied.
    func extensionRefusal(_ change: RentalChange, status: RentalStatus, unit: String, today: CalendarDay, _ db: Database) throws -> String? {
        guard change.day > status.to else {
            return "the rental already ends on \(status.to), after \(change.day): use spoolctl end to end it earlier"
        }
        // Ended (the daily pass completes it): days already past are not rented after the fact.
        guard status.to > today else { return "the rental ended on \(status.to) (today is \(today)): submit a new request" }
        if let limit = status.from.adding(months: configuration.maxPeriodMonths), change.day > limit {
            return "the period \(status.from) until \(change.day) is longer than the maximum of \(configuration.maxPeriodMonths) months"
        }
        let inService = try Bool.fetchOne(db, sql: "SELECT in_service FROM unit WHERE id = ?", arguments: [unit])
        guard inService == true else { return "unit \(unit) is out of service" }
        guard let added = RentalPeriod(start: status.to, end: change.day) else { return "the period does not extend the rental" }
        if try unitIsFree(unit, period: added, excluding: status.id, db) { return nil }
        // The first holding in the way names the date (not whose it is: another customer's).
        let blocking = try Row.fetchOne(db, sql: """
            SELECT request_id, start_day FROM rental
            WHERE state = 'assigned' AND unit_id = ? AND request_id <> ? AND start_day < ? AND end_day > ?
            ORDER BY start_day LIMIT 1
            """, arguments: [unit, status.id, added.end.daysSinceEpoch, added.start.daysSinceEpoch])
        guard let blocking else { return "unit \(unit) is not free from \(status.to) until \(change.day)" }
        let start = try AllocatorStore.day(blocking, "start_day")
        let holder = try blocking.decode(String.self, forColumn: "request_id")
        logger.info("extension blocked", metadata: ["request": "\(status.id)", "unit": "\(unit)", "by": "\(holder)"])
        return "unit \(unit) is taken from \(max(start, status.to))"
    }

    /// Why ending the rental in `status` on `change.day` is refused; nil when it may be applied:
    /// `max(from + 1, today) <= day < to`.
    func endRefusal(_ change: RentalChange, status: RentalStatus, today: CalendarDay) -> String? {
        if change.day > status.to { return "the rental already ends on \(status.to), before \(change.day): use spoolctl extend" }
        if change.day <= status.from { return "an end on or before the first day \(status.from) is a cancel: use spoolctl cancel" }
        if change.day < today { return "\(change.day) has passed (today is \(today))" }
        return nil
    }

    /// When the notification of the decided status `status` was delivered (its delivery
    /// record), if it was.
    func deliveredAt(of status: RentalStatus) -> Timestamp? {
        guard let notification = CustomerNotification(decided: status, decidedAt: status.updatedAt.milliseconds),
              let records = try? RecordDirectory.existing(spool: notifications.spool, path: "notifier/delivered"),
              let bytes = try? records.read(notification.eventId, limit: 4096) else { return nil }
        return Timestamp(rfc3339: String(decoding: bytes, as: UTF8.self))
    }
}
