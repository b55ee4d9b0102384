import Rentals

extension NotificationService {
    /// Whether `notification` is a change's message (`extension`, `extension-refused`, `end`)
    /// that arrives after the customer was already told of a LATER decision on the rental: the
    /// index shows a higher revision (a later extend or end) or a cancel, and that decision's
    /// own message was delivered (its record in `notifier/delivered/`). It is not delivered then:
    /// with two notifier workers, or a failed delivery retried after the next revision's went
    /// out, revision k's message would otherwise reach the customer AFTER revision k+1's, and the
    /// last text they read would state an end or a price the rental no longer has. Messages
    /// handled in order are all delivered (each true when sent, the last one the current state).
    /// An index that lags, or a record not readable, only delivers more, never less.
    func isSupersededChangeMessage(_ notification: CustomerNotification, current: RentalStatus?) -> Bool {
        let kinds: Set<CustomerNotification.Kind> = [.extension, .extensionRefused, .end]
        guard kinds.contains(notification.kind), let decided = notification.status, let current,
              current.revision > decided.revision || current.state == .cancelled,
              let later = CustomerNotification(decided: current, decidedAt: current.updatedAt.milliseconds),
              later.eventId != notification.eventId else { return false }
        return (try? delivered.read(later.eventId)) != nil
    }
}
