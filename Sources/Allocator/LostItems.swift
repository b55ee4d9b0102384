import Foundation
import GRDB
import Rentals
import Spool

extension AllocationService {
    /// What ``requeueLostItems(spool:)`` queued again.
    public struct LostItems: Sendable, Equatable {
        /// Requests whose allocate or cancel command was queued again.
        public var commands: [String] = []
        /// Notifications (event ids, `<request>-<kind>`, `<request>-<kind>-r<revision>`) queued again.
        public var notifications: [String] = []
    }

    /// Queues again what a lost queue item held (an item that was damaged, and so quarantined
    /// by its consumer, or removed), from the other copies the spool keeps of it:
    ///
    /// - an allocate command: a request the index shows `received` (journaled by a submit after
    ///   its command was queued) that is in no allocation queue entry (waiting, claimed or
    ///   dead) and unknown to the allocator store; queued again under the request's id;
    /// - a cancel command: a request the index shows with `cancel_requested_at` (journaled by a
    ///   cancel after its command was queued), not cancelled, with no cancel command queued and
    ///   none processed by the allocator store;
    /// - a notification: a decision in the allocator store (assigned, rejected, cancelled,
    ///   waitlisted, expired; after a change, its extension, end or refusal) whose message was
    ///   not delivered (`notifier/delivered/<event-id>`), is not waiting in
    ///   the store's outbox and is in no notification queue entry.
    ///
    /// Each check reads the index (or the store) first, then the queue, then the store (or the
    /// delivery records), the order in which a running consumer records its effects before it
    /// removes the item, so an item consumed meanwhile is not taken for a lost one. A false
    /// positive costs nothing: the allocator and the notifier are idempotent consumers. A
    /// request submitted by a restricted (setgid) `spoolctl` is journaled only by the allocator
    /// when it takes the command, so a command of such a request lost before that is not found.
    public func requeueLostItems(spool: Spool) throws -> LostItems {
        var result = LostItems()
        let allocation = try spool.queue(.allocation, retry: RetryPolicy(maxAttempts: configuration.maxAttempts))
        var waiting: [RentalStatus] = []
        for state in ["received", "assigned", "confirmed", "waitlisted"] {
            for row in try index.entities(state: state, limit: Int.max) {
                guard let status = RentalStatus(document: row.document) else { continue }
                if status.state == .received || status.cancelRequestedAt != nil { waiting.append(status) }
            }
        }
        var cancelsQueued: Set<String>?
        for status in waiting {
            guard let id = ItemID(status.id), let request = Self.request(of: status) else { continue }
            let cancel = status.cancelRequestedAt != nil
            if !cancel, try allocation.holds(request: id) { continue }
            // A cancel queued covers both (a cancel withdraws the allocate command before the
            // index learns of it).
            if cancelsQueued == nil {
                cancelsQueued = Set(try allocation.queuedPayloads().compactMap { payload in
                    guard case .cancel(let request, _)? = try? JSONDecoder().decode(AllocationCommand.self, from: Data(payload)) else { return nil }
                    return request.id
                })
            }
            if cancelsQueued?.contains(status.id) == true { continue }
            // Known: its key (or a pruning's tombstone) is processed, or its row decides it (an
            // allocate of a known request; a cancel of a rental no longer assigned), since the
            // retention pruning removes the keys a row makes redundant.
            let known = try store.read { db in
                try Bool.fetchOne(db, sql: "SELECT 1 FROM processed WHERE key = ?", arguments: [cancel ? "cancel:\(status.id)" : "allocate:\(status.id)"]) == true
                    || (try Bool.fetchOne(db, sql: cancel ? "SELECT 1 FROM rental WHERE request_id = ? AND state NOT IN ('assigned', 'waitlisted')" : "SELECT 1 FROM rental WHERE request_id = ?",
                                          arguments: [status.id]) == true)
            }
            if known { continue }
            let command: AllocationCommand = cancel ? .cancel(request, requestedAt: status.cancelRequestedAt!.milliseconds) : .allocate(request)
            try allocation.enqueue(canonicalJSON(command), id: cancel ? nil : id)
            result.commands.append(status.id)
        }
        // Notifications: one snapshot of decisions and of the outbox, then the queue, then the
        // delivery records (the notifier writes its record before it acknowledges the item).
        let (documents, pending) = try store.read { db in
            let documents = try String.fetchAll(db, sql: "SELECT status FROM rental WHERE state IN ('assigned', 'rejected', 'cancelled', 'waitlisted', 'expired') ORDER BY request_id")
            let pending = try String.fetchAll(db, sql: "SELECT item_id FROM outbox WHERE kind = 'notify' AND item_id IS NOT NULL")
            return (documents, Set(pending))
        }
        let delivered = try RecordDirectory(spool: spool, path: "notifier/delivered")
        for document in documents {
            guard let status = RentalStatus(document: document), let notification = Self.notification(of: status),
                  !pending.contains(notification.eventId), let id = ItemID(notification.eventId) else { continue }
            if try notifications.holds(id: id) || (try delivered.read(notification.eventId, limit: 4096)) != nil { continue }
            try notifications.enqueue(canonicalJSON(notification), id: id)
            result.notifications.append(notification.eventId)
        }
        if !result.commands.isEmpty || !result.notifications.isEmpty {
            logger.warning("queued again what lost queue items held", metadata: [
                "commands": "\(result.commands.joined(separator: ","))",
                "notifications": "\(result.notifications.joined(separator: ","))",
            ])
        }
        return result
    }

    /// The request a status describes (``RentalStatus/askedRequest()``).
    static func request(of status: RentalStatus) -> RentalRequest? {
        status.askedRequest()  // a lost allocate keeps its site and waiting-list wish (issue 11)
    }

    /// The notification the allocator queued for the decision `status` records
    /// (``CustomerNotification/init(decided:decidedAt:)``: the kind and the revision-aware event
    /// id follow from the status, and after a change its period is the current one).
    static func notification(of status: RentalStatus) -> CustomerNotification? {
        CustomerNotification(decided: status, decidedAt: status.updatedAt.milliseconds)
    }
}
