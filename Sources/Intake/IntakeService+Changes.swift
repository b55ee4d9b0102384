import Foundation
import Rentals
import Spool

/// The outcome of ``IntakeService/change(_:id:day:caller:)``.
public enum ChangeSubmission: Sendable, Equatable {
    /// The change is durably in the allocation queue under this id (its item id).
    case queued(changeID: String)
    /// The rental already ends on the day asked for: nothing was queued (a retry by hand).
    case already(RentalStatus)
}

extension IntakeService {
    /// Queues a change of rental `id` (`spoolctl extend ID --to D`, `spoolctl end ID --on D`):
    /// once this returns `.queued`, the change is durable in the allocation queue (item id = the
    /// change id) and the allocator decides it exactly once, applying or refusing it with a
    /// reason (see `AllocationService.decideChange`); the customer is notified either way.
    ///
    /// Access as for cancel: another user's request and no request give the same answer (77;
    /// 66 to an operator for an unknown id). The checks here are the front door's (the allocator
    /// checks again against its store, which may have moved on): the rental is assigned or
    /// confirmed with no cancel pending; extend: `to > today` (not ended), `day > to` and the
    /// period from `from` to `day` at most `max_period_months`; end: `max(from + 1, today) <= day < to`. `day == to`
    /// queues nothing (`.already`). Nothing is journaled here (a restricted caller must not
    /// hold the journal's lock; the allocator journals the outcome), for every caller.
    ///
    /// - Throws: ``IntakeError``: 77/66 as above, 65 for a change not allowed (state, day,
    ///   period), 75 while the request is not decided yet, 73/74/75 when the queue cannot take it.
    public func change(_ kind: RentalChange.Kind, id: String, day: CalendarDay, caller: Caller) throws(IntakeError) -> ChangeSubmission {
        let current = try status(id, caller: caller)
        try Self.checkChange(kind, of: current, day: day, today: .today(), configuration: configuration)
        if day == current.to { return .already(current) }
        let changeID = ItemID.generate()
        let change = RentalChange(id: changeID.rawValue, kind: kind, request: id, day: day, requestedAt: Clock.nowMilliseconds(),
                                  requestedBy: caller.uid, requestedByName: caller.name)
        let command: AllocationCommand = kind == .extend ? .extend(change) : .end(change)
        do { try allocation.enqueue(canonicalJSON(command), id: changeID) } catch {
            throw IntakeError(error, doing: "queueing the \(kind.rawValue)")
        }
        logger.info("change requested", metadata: ["request": "\(id)", "change": "\(changeID)", "kind": "\(kind.rawValue)",
                                                   "day": "\(day)", "by": "\(caller.name)"])
        return .queued(changeID: changeID.rawValue)
    }

    /// The front door's checks of a `kind` change of the rental in `status` to `day` (see
    /// ``change(_:id:day:caller:)``); returns normally for `day == to` too.
    static func checkChange(_ kind: RentalChange.Kind, of status: RentalStatus, day: CalendarDay, today: CalendarDay,
                            configuration: SystemConfiguration) throws(IntakeError) {
        let id = status.id
        switch status.state {
        case .assigned, .confirmed: break
        case .received:
            throw IntakeError(.tryAgain, "request \(id) is not decided yet; change it once it is confirmed (spoolctl status \(id))")
        case .waitlisted:
            throw IntakeError(.badData, "request \(id) is on the waiting list: only a rental with a unit can be \(kind == .extend ? "extended" : "ended"); cancel it and submit again")
        case .rejected, .cancelled, .completed, .expired:
            throw IntakeError(.badData, "request \(id) is \(status.state.rawValue): only a rental with a unit can be \(kind == .extend ? "extended" : "ended")")
        }
        if status.cancelRequestedAt != nil { throw IntakeError(.badData, "request \(id) is being cancelled; it cannot be changed") }
        if day == status.to { return }
        switch kind {
        case .extend:
            guard day > status.to else {
                throw IntakeError(.badData, "--to \(day) is before the rental's end \(status.to): use spoolctl end \(id) --on \(day)")
            }
            guard status.to > today else {
                throw IntakeError(.badData, "request \(id) ended on \(status.to) (today is \(today)): it cannot be extended; submit a new request")
            }
            if let limit = status.from.adding(months: configuration.maxPeriodMonths), day > limit {
                throw IntakeError(.badData, "the period \(status.from) until \(day) is longer than the maximum of \(configuration.maxPeriodMonths) months")
            }
        case .end:
            guard day <= status.to else {
                throw IntakeError(.badData, "--on \(day) is after the rental's end \(status.to): use spoolctl extend \(id) --to \(day)")
            }
            guard day > status.from else {
                throw IntakeError(.badData, "--on \(day) is not after the first day \(status.from): to give up the whole rental, use spoolctl cancel \(id)")
            }
            guard day >= today else { throw IntakeError(.badData, "--on \(day) is in the past (today is \(today))") }
        }
        guard status.revision < RentalStatus.maximumRevision else {
            throw IntakeError(.badData, "request \(id) has had too many changes; it cannot be changed again")
        }
    }

    /// Polls the status of `id` until the allocator has decided change `changeID` or
    /// `timeout` passes. Returns the status once the outcome is known: its `change` is this
    /// change's; or the rental is no longer assigned (cancelled or completed meanwhile: the
    /// change is refused); or it already ends on `day` (another change made it so: this one
    /// decides nothing); or the change left the allocation queue (decided, and a later change
    /// decided since). Nil when the change is still queued at the deadline (it stays queued).
    ///
    /// - Throws: ``IntakeError`` as ``status(_:caller:)``.
    public func waitForChange(_ id: String, changeID: String, caller: Caller, timeout: Duration,
                              day: CalendarDay? = nil) throws(IntakeError) -> RentalStatus? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let current = try status(id, caller: caller)
            if current.change?.id == changeID || (current.state != .assigned && current.state != .confirmed)
                || (day != nil && current.to == day) {
                return current
            }
            if let item = ItemID(changeID), (try? allocation.holds(id: item)) == false,
               (try? { Thread.sleep(forTimeInterval: 0.05); return try allocation.holds(id: item) }()) == false {
                // Twice absent: not an item moving between a bucket and `active/` during one listing.
                // Decided (the allocator removes the item after publishing): read once more.
                if !restricted { _ = try? index.catchUp(from: journal) }
                return try status(id, caller: caller)
            }
            if ContinuousClock.now >= deadline { return nil }
            if !restricted { _ = try? index.catchUp(from: journal) }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }
}
