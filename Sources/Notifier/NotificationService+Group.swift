import DaemonRuntime
import Foundation
import Rentals
import Spool

extension NotificationService {
    /// Handles several queued notifications together (group commit, for a backlog): each message
    /// is written and synced into its Maildir's `tmp/` and linked into `new/` as ``handle(_:)``
    /// does, then each Maildir's `new/` is synced once, then the delivery records are created
    /// and `notifier/delivered/` is synced once, then the new statuses are journaled in one
    /// durable append. Returns one outcome per item, in order.
    ///
    /// Guarantees as for ``handle(_:)``: a delivery is recorded only after its message is durable
    /// (its `new/` synced), and an item is done only after its status is journaled. A crash
    /// anywhere in the group leaves each item to be redelivered: its message, if linked, is found
    /// (not written twice) and synced, its record, if durable, is found, and its status is
    /// journaled again (the index's version rule makes a second copy harmless).
    public func handle(_ items: [ClaimedItem]) -> [ProcessingOutcome] {
        guard items.count > 1 else { return items.map { handle($0) } }
        _ = try? index.catchUp(from: journal)
        var outcomes = [ProcessingOutcome](repeating: .done, count: items.count)
        var pending: [(item: Int, notification: CustomerNotification, current: RentalStatus?)] = []
        var failures: [RentalStatus] = []
        func fail(_ index: Int, _ entry: (notification: CustomerNotification, current: RentalStatus?), _ error: any Error) {
            let attempts = items[index].attempts + 1
            logger.error("delivery failed", metadata: ["request": "\(entry.notification.request.id)", "attempt": "\(attempts)", "error": "\(error)"])
            failures.append(status(after: entry.notification, current: entry.current, notifiedAt: nil, failure: "\(error)", attempts: attempts))
            outcomes[index] = .retry("\(error)")
        }

        // Deliver (no sync of new/ yet) what is not delivered yet.
        var created: [Int] = []
        for (index, item) in items.enumerated() {
            guard let notification = try? JSONDecoder().decode(CustomerNotification.self, from: Data(item.payload)) else {
                outcomes[index] = .reject("undecodable notification")
                continue
            }
            let current = currentStatus(notification.request.id)
            do {
                if try delivered.read(notification.eventId) == nil {
                    if notification.kind == .confirmation, let current, current.state == .cancelled {
                        logger.info("confirmation superseded by a cancellation; not delivered", metadata: ["request": "\(notification.request.id)"])
                        continue
                    }
                    if isSupersededChangeMessage(notification, current: current) {
                        logger.info("change message superseded by a later decision; not delivered", metadata: ["request": "\(notification.request.id)"])
                        continue
                    }
                    if Self.isSupersededWaitlistMessage(notification, current: current) {
                        logger.info("waiting-list message superseded by a later decision; not delivered", metadata: ["request": "\(notification.request.id)"])
                        continue
                    }
                    try deliver(notification, syncingNew: false)
                    created.append(pending.count)
                }
                pending.append((index, notification, current))
            } catch {
                fail(index, (notification, current), error)
            }
        }
        // One sync of new/ per Maildir, then the records, then one sync of delivered/.
        do {
            try maildir.syncNew(customers: Set(created.map { pending[$0].notification.request.customer }))
            let stamp = Array(Timestamp.now().description.utf8)
            for entry in created { _ = try delivered.createOnce(pending[entry].notification.eventId, stamp, syncing: false) }
            if !created.isEmpty { try delivered.sync() }
            for entry in created.map({ pending[$0].notification }) {
                logger.info("customer notified", metadata: ["request": "\(entry.request.id)", "kind": "\(entry.kind.rawValue)",
                                                           "contact": "\(entry.request.contact)"])
            }
        } catch {
            for entry in created { fail(pending[entry].item, (pending[entry].notification, pending[entry].current), error) }
            let failed = Set(created.map { pending[$0].item })
            pending.removeAll { failed.contains($0.item) }
        }
        // The statuses, journaled in one append.
        var statuses: [RentalStatus] = []
        for entry in pending {
            do {
                let notifiedAt = try delivered.read(entry.notification.eventId).flatMap { Timestamp(rfc3339: String(decoding: $0, as: UTF8.self)) }
                statuses.append(status(after: entry.notification, current: entry.current, notifiedAt: notifiedAt ?? .now(), failure: nil, attempts: 0))
            } catch {
                fail(entry.item, (entry.notification, entry.current), error)
            }
        }
        let events = (statuses + failures).map { $0.indexEvent() }
        guard !events.isEmpty else { return outcomes }
        do {
            try journal.append(events.map { $0.encoded() }, durability: .durable)
        } catch {
            for entry in pending where outcomes[entry.item] == .done { outcomes[entry.item] = .retry("\(error)") }
            return outcomes
        }
        // Best effort: the journal is the record; the index is caught up from it on a later tick.
        do { try index.apply(events) } catch {
            logger.warning("cannot update the status index", metadata: ["requests": "\(events.map(\.entity))", "error": "\(error)"])
        }
        return outcomes
    }
}
