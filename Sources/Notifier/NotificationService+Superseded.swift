import Rentals

extension NotificationService {
    /// Whether `notification` is a change's message (`extension`, `extension-refused`, `end`)
    /// that a later decision on the rental made stale: the index shows a higher revision (a
    /// later extend or end, whose own message states the rental as it now is) or the rental was
    /// cancelled. It is not delivered then (as a confirmation superseded by a cancellation):
    /// with two notifier workers, or a failed delivery retried later, revision k's message could
    /// otherwise reach the customer AFTER revision k+1's, and the last text they read would
    /// state an end or a price the rental no longer has. An index that lags only delivers more
    /// (never less): the index never shows a decision that was not made.
    static func isSupersededChangeMessage(_ notification: CustomerNotification, current: RentalStatus?) -> Bool {
        let kinds: Set<CustomerNotification.Kind> = [.extension, .extensionRefused, .end]
        guard kinds.contains(notification.kind), let decided = notification.status, let current else { return false }
        return current.revision > decided.revision || current.state == .cancelled
    }
}
