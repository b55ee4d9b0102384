extension CustomerNotification {
    /// The notification the allocator queues for the decision `status` records: its kind, event
    /// id and fields all follow from the status alone, so the allocator (every decision of issue
    /// 11) and `reconcile` (re-queueing a lost notification, `LostItems`) build the same one.
    ///
    /// - Kind: `assigned`/`confirmed` → `confirmation`, or, once a change was decided
    ///   (``RentalStatus/change``), `extension` (an applied extend), `end` (an applied end) or
    ///   `extension-refused` (a refused extend or end); `rejected` → `rejection`; `cancelled` →
    ///   `cancellation`; `waitlisted` → `waitlisted`; `expired` → `expiry`. Nil for `received` and
    ///   `completed` (no notification) and for a status whose period is not a period.
    /// - Event id: ``eventID(request:kind:revision:)`` at the status's revision, so each revision
    ///   has its own delivery record and a redelivery of the same decision has the same id.
    /// - At revision 0 an unpriced confirmation, rejection or cancellation is byte-identical to
    ///   the one queued before issue 11 (no ``status``: the notifier rebuilds the status from the
    ///   request); every other notification (a priced one too, so the notifier keeps the price)
    ///   carries `status`, from which the notifier starts.
    ///
    /// `request` is rebuilt from the status (its current period, not the one first asked for).
    public init?(decided status: RentalStatus, decidedAt: Int64) {
        guard let kind = Self.kind(decided: status), let period = RentalPeriod(start: status.from, end: status.to) else { return nil }
        // A waiting request (and a promoted one: a confirmation above revision 0 without a
        // change) asked to wait, at the site its status names while it waits.
        let waited = kind == .waitlisted || kind == .expiry || (kind == .confirmation && status.revision > 0)
        let request = RentalRequest(id: status.id, customer: status.customer, contact: status.contact, size: status.size,
                                    period: period, submittedBy: status.submittedBy, submittedByName: status.submittedByName,
                                    createdAt: status.createdAt.milliseconds,
                                    site: kind == .waitlisted || kind == .expiry ? status.site : nil, waitlist: waited)
        switch kind {
        case .rejection:
            self.init(kind: kind, request: request, reason: status.reason, alternative: status.alternative, decidedAt: decidedAt)
        case .waitlisted, .expiry:
            self.init(kind: kind, request: request, site: status.site, reason: status.reason, decidedAt: decidedAt)
        default:
            self.init(kind: kind, request: request, unit: status.unit, site: status.site, decidedAt: decidedAt)
        }
        eventId = Self.eventID(request: status.id, kind: kind, revision: status.revision)
        let firstDecision: Set<Kind> = [.confirmation, .rejection, .cancellation]
        if status.revision != 0 || !firstDecision.contains(kind) || status.price != nil { self.status = status }
    }

    /// The kind of notification a decided `status` calls for; nil when none.
    public static func kind(decided status: RentalStatus) -> Kind? {
        switch status.state {
        case .assigned, .confirmed:
            guard let change = status.change else { return .confirmation }
            guard change.applied else { return .extensionRefused }
            return change.kind == .extend ? .extension : .end
        case .rejected: return .rejection
        case .cancelled: return .cancellation
        case .waitlisted: return .waitlisted
        case .expired: return .expiry
        case .received, .completed: return nil
        }
    }
}

extension RentalStatus {
    /// This decided status once the notifier has tried to deliver its notification (`kind`):
    /// the same revision, one step later when delivered (`notifiedAt` set, an assigned rental
    /// `confirmed`, a change's own `notified_at` set), the failed `attempts` and `failure`
    /// otherwise. What the notifier journals after a delivery and what `reconcile` restores from
    /// the allocator store and the delivery record (`IndexRestore`), so both give the same
    /// status, byte for byte.
    public func afterDelivery(of kind: CustomerNotification.Kind, notifiedAt: Timestamp?, failure: String?,
                              attempts: Int, now: Timestamp = .now()) -> RentalStatus {
        var status = self
        let step = version % 1_000_000 / 1000
        let delivered = notifiedAt != nil
        status.updatedAt = notifiedAt ?? now
        status.attempts = attempts
        status.lastError = failure
        if delivered {
            status.notifiedAt = notifiedAt
            if status.change != nil, kind == .extension || kind == .extensionRefused || kind == .end {
                status.change?.notifiedAt = notifiedAt
            }
            if status.state == .assigned { status.state = .confirmed }
        }
        status.version = RentalStatus.version(revision: revision, step: step + (delivered ? 1 : 0), attempts: attempts)
        return status
    }
}
