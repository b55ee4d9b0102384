extension RentalStatus {
    /// The `received` status journaled for `request` (by the front door, or by the allocator for
    /// a restricted caller's item): ``init(received:)`` plus what the request asked that the
    /// allocator's decision depends on, so that `spoolctl reconcile` queues a lost allocation
    /// item (quarantined to `corrupt/`) again AS IT WAS ASKED (``askedRequest()``): `site`, the
    /// site asked for (as while `waitlisted`), and `waitlist` `{"since": created_at}` (no
    /// position) when it asked to wait (`submit --waitlist`). A request asking neither gives
    /// the bytes of ``init(received:)``. Every decision is still built from the request itself.
    public init(journaledReceived request: RentalRequest) {
        self.init(received: request)
        site = request.site
        if request.waitlist { waitlist = WaitlistPlace(since: createdAt) }
    }

    /// The request a `received` status stands for, as ``init(journaledReceived:)`` recorded it
    /// (site and waiting-list wish included); for any other state the site and wish are left
    /// out (what a lost cancel needs). Nil when the period is not a period.
    public func askedRequest() -> RentalRequest? {
        guard let period = RentalPeriod(start: from, end: to) else { return nil }
        let received = state == .received
        return RentalRequest(id: id, customer: customer, contact: contact, size: size, period: period,
                             submittedBy: submittedBy, submittedByName: submittedByName, createdAt: createdAt.milliseconds,
                             site: received ? site : nil, waitlist: received && waitlist != nil)
    }
}
