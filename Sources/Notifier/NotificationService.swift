import DaemonRuntime
import Foundation
import Logging
import Rentals
import Spool

/// Delivers one notification: to the customer's Maildir (always) and to the hook (when one is
/// configured), then journals the new status (`confirmed`, or `notified_at` on a rejection or
/// cancellation) and projects it into the index.
///
/// Idempotent: a delivered event is recorded in `notifier/delivered/<event id>`, and a redelivered
/// item finds it and only re-journals the status. A confirmation for a rental that was cancelled
/// meanwhile is not delivered (the cancellation follows). A failed attempt is journaled too, with
/// its attempt count and error, so `status` shows them.
public final class NotificationService: Sendable {
    let configuration: SystemConfiguration
    let maildir: MaildirDelivery
    let hook: HookDelivery?
    let delivered: RecordDirectory
    let journal: Journal
    let index: StatusIndex
    let logger: Logger

    /// A service over `spool`; its Maildir deliveries use the spool's file-system calls too.
    public init(spool: Spool, configuration: SystemConfiguration, logger: Logger) throws {
        self.configuration = configuration
        maildir = MaildirDelivery(root: configuration.effectiveMaildirRoot, calls: spool.configuration.calls)
        hook = configuration.notifyHook.isEmpty ? nil
            : HookDelivery(command: configuration.notifyHook, timeout: .seconds(configuration.hookTimeoutSeconds))
        delivered = try RecordDirectory(spool: spool, path: "notifier/delivered")
        journal = try Journal(spool: spool)
        index = try StatusIndex(spool: spool)
        self.logger = logger
    }

    /// Handles one queued notification.
    public func handle(_ item: ClaimedItem) -> ProcessingOutcome {
        guard let notification = try? JSONDecoder().decode(CustomerNotification.self, from: Data(item.payload)) else {
            return .reject("undecodable notification")
        }
        let request = notification.request.id
        // Everything this notification follows from (the decision, a cancel request) was
        // journaled before it was queued, but the index may lag: catch up before reading it.
        _ = try? index.catchUp(from: journal)
        let current = currentStatus(request)
        do {
            if try delivered.read(notification.eventId) == nil {
                if notification.kind == .confirmation, let current, current.state == .cancelled {
                    logger.info("confirmation superseded by a cancellation; not delivered", metadata: ["request": "\(request)"])
                    return .done
                }
                if isSupersededChangeMessage(notification, current: current) {
                    logger.info("change message superseded by a later decision; not delivered", metadata: ["request": "\(request)"])
                    return .done
                }
                if Self.isSupersededWaitlistMessage(notification, current: current) {
                    logger.info("waiting-list message superseded by a later decision; not delivered", metadata: ["request": "\(request)"])
                    return .done
                }
                try deliver(notification)
                _ = try delivered.createOnce(notification.eventId, Array(Timestamp.now().description.utf8))
                logger.info("customer notified", metadata: ["request": "\(request)", "kind": "\(notification.kind.rawValue)",
                                                           "contact": "\(notification.request.contact)"])
            }
            let notifiedAt = try delivered.read(notification.eventId).flatMap { Timestamp(rfc3339: String(decoding: $0, as: UTF8.self)) }
            try record(status(after: notification, current: current, notifiedAt: notifiedAt ?? .now(), failure: nil, attempts: 0))
            return .done
        } catch {
            let attempts = item.attempts + 1
            logger.error("delivery failed", metadata: ["request": "\(request)", "attempt": "\(attempts)", "error": "\(error)"])
            try? record(status(after: notification, current: current, notifiedAt: nil, failure: "\(error)", attempts: attempts))
            return .retry("\(error)")
        }
    }

    /// The request's status from the index or, when the index cannot be used, from the journal
    /// (a cancelled request must not be confirmed because the index is damaged).
    func currentStatus(_ request: String) -> RentalStatus? {
        do {
            return try index.entity(request).flatMap { RentalStatus(document: $0.document) }
        } catch {
            logger.warning("status index unusable; reading the journal", metadata: ["request": "\(request)", "error": "\(error)"])
            return (try? StatusIndex.scan(journal, entity: request))?[request].flatMap { RentalStatus(document: $0.document) }
        }
    }

    /// Delivers to the Maildir (see ``MaildirDelivery/deliver(_:customer:eventId:syncingNew:)``)
    /// and to the hook.
    func deliver(_ notification: CustomerNotification, syncingNew: Bool = true) throws {
        let message = MessageRenderer.render(notification, sender: configuration.sender, date: Clock.nowMilliseconds())
        try maildir.deliver(message, customer: notification.request.customer, eventId: notification.eventId, syncingNew: syncingNew)
        try hook?.deliver(notification)
    }

    /// The status after delivering (or failing to deliver) `notification`.
    func status(after notification: CustomerNotification, current: RentalStatus?, notifiedAt: Timestamp?,
                failure: String?, attempts: Int) -> RentalStatus {
        if let decided = notification.status {
            var status = Self.status(after: decided, kind: notification.kind, notifiedAt: notifiedAt, failure: failure, attempts: attempts)
            // A cancel requested after the decision (journaled by the front door) stays visible.
            if status.state != .cancelled { status.cancelRequestedAt = decided.cancelRequestedAt ?? current?.cancelRequestedAt }
            return status
        }
        var status = RentalStatus(received: notification.request)
        status.unit = notification.unit
        status.site = notification.site
        status.reason = notification.reason
        status.alternative = notification.alternative
        status.cancelRequestedAt = current?.cancelRequestedAt
        status.updatedAt = notifiedAt ?? .now()
        status.notifiedAt = notifiedAt
        status.attempts = attempts
        status.lastError = failure
        let delivered = notifiedAt != nil
        switch notification.kind {
        case .confirmation:
            status.state = delivered ? .confirmed : .assigned
            status.version = RentalStatus.version(step: delivered ? 3 : 2, attempts: attempts)
        case .rejection:
            status.state = .rejected
            status.version = RentalStatus.version(step: delivered ? 3 : 2, attempts: attempts)
        case .cancellation:
            status.state = .cancelled
            status.version = RentalStatus.version(step: delivered ? 5 : 4, attempts: attempts)
        case .waitlisted, .expiry, .extension, .extensionRefused, .end:
            break  // always carry the decided status (CustomerNotification.status)
        }
        return status
    }

    /// The status after delivering (or failing to deliver) a notification that carries the
    /// allocator's decided status: ``RentalStatus/afterDelivery(of:notifiedAt:failure:attempts:now:)``
    /// (the same revision, one step later once delivered). Never rebuilt from the request, which
    /// would undo an extension or an end.
    static func status(after decided: RentalStatus, kind: CustomerNotification.Kind, notifiedAt: Timestamp?,
                       failure: String?, attempts: Int) -> RentalStatus {
        decided.afterDelivery(of: kind, notifiedAt: notifiedAt, failure: failure, attempts: attempts)
    }

    private func record(_ status: RentalStatus) throws {
        let event = status.indexEvent()
        try journal.append([event.encoded()], durability: .durable)
        // Best effort: the journal is the record; the index is caught up from it on a later tick.
        do { try index.apply([event]) } catch {
            logger.warning("cannot update the status index", metadata: ["request": "\(status.id)", "error": "\(error)"])
        }
    }
}
