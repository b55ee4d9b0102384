import Rentals

extension NotificationService {
    /// Whether `notification` is a `waitlisted` message whose request has moved on (promoted,
    /// cancelled or expired: the index shows a later decision, not the waiting state). It is not
    /// delivered then: with the notifier stopped for a while, the "on the waiting list" message
    /// and the promotion's confirmation wait in the queue together, and the customer must not
    /// be told they wait after (or beside) being told they have a unit. The later decision's own
    /// message tells them what happened.
    static func isSupersededWaitlistMessage(_ notification: CustomerNotification, current: RentalStatus?) -> Bool {
        guard notification.kind == .waitlisted, let decided = notification.status, let current else { return false }
        return current.state != .waitlisted && current.version > decided.version
    }
}
