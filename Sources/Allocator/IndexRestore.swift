import Foundation
import GRDB
import Rentals
import Spool

extension AllocationService {
    /// What ``restoreIndexFromStore(spool:)`` did.
    public struct IndexRestore: Sendable, Equatable {
        /// Requests whose status was journaled again: their index row was missing, or older than
        /// the decision the allocator store holds.
        public var restored: [String] = []
        /// How many decided requests were compared.
        public var compared = 0
    }

    /// Uses the allocator store, the second copy of every decision, to make whole what a damaged
    /// journal lost: each decided request whose index row is missing or older than the store's
    /// status has that status journaled again (durably) and projected. The index is a projection
    /// of the journal, so the journal is restored first.
    ///
    /// Idempotent: index versions guard every upsert, so restoring twice, or restoring a request
    /// whose event was merely not projected yet, changes nothing visible. The notifier's step
    /// after a decision (`confirmed`, `notified_at`) is taken from its delivery records
    /// (`notifier/delivered/<request>-<kind>`, which hold the delivery time), so a delivered
    /// confirmation comes back as `confirmed`; the customer is not notified again.
    ///
    /// A request that ``RetentionPolicy`` may drop at `now` (judged on the status with its
    /// delivery applied, as compaction judges the index's) is never restored: compaction may
    /// have dropped it from the journal and the index, and the store's pruning drops it next, in
    /// whichever order they run (issue 10). Unless a queue entry (a dead letter too) or the
    /// outbox mentions it: compaction keeps such a request (see
    /// ``RetentionPruning/compactionMayDrop(spool:configuration:now:)``), because a dead
    /// confirmation retried later must find it cancelled; so it is restored like any other.
    ///
    /// - Throws: store, index or journal failures; what was appended before stays (harmless).
    public func restoreIndexFromStore(spool: Spool, now: Timestamp = .now()) throws -> IndexRestore {
        let policy = RetentionPolicy(configuration)
        var result = IndexRestore()
        // One snapshot of decisions and of events not yet published (an allocator publishes
        // those itself); then project the journal, so every decision published before the
        // snapshot is in the index and is not taken for a lost one.
        let (documents, pending) = try store.read { db in
            let documents = try String.fetchAll(db, sql: "SELECT status FROM rental ORDER BY request_id")
            let pending = try Data.fetchAll(db, sql: "SELECT payload FROM outbox WHERE kind = 'journal'")
                .compactMap { IndexEvent.decode(Array($0))?.entity }
            return (documents, Set(pending))
        }
        try index.catchUp(from: journal)
        let delivered = try RecordDirectory(spool: spool, path: "notifier/delivered")
        var statuses: [RentalStatus] = []
        for document in documents {
            guard let decided = RentalStatus(document: document), !pending.contains(decided.id) else { continue }
            statuses.append(Self.afterDelivery(of: decided, delivered))
        }
        let droppable = Set(statuses.filter { policy.mayDrop($0, now: now) }.map(\.id))
        let retry = RetryPolicy(maxAttempts: configuration.maxAttempts)
        let needed = try ReferenceScan(candidates: droppable).mentions(
            outbox: store, queues: [try spool.queue(.allocation, retry: retry), try spool.queue(.notifications, retry: retry)])
        var events: [[UInt8]] = []
        for status in statuses {
            if droppable.contains(status.id), !needed.contains(status.id) { continue }
            result.compared += 1
            if let row = try index.entity(status.id), row.version >= status.version { continue }
            events.append(status.indexEvent().encoded())
            result.restored.append(status.id)
        }
        var start = 0
        while start < events.count {
            let batch = Array(events[start..<min(start + 500, events.count)])
            try journal.append(batch, durability: .durable)
            start += batch.count
        }
        if !events.isEmpty {
            try index.catchUp(from: journal)
            logger.warning("restored index events from the allocator store", metadata: [
                "requests": "\(result.restored.count)", "ids": "\(result.restored.prefix(20).joined(separator: ","))",
            ])
        }
        return result
    }

    /// `status` with the notifier's delivery of its decision applied, if it was delivered (the
    /// same status the notifier journals after delivering): the delivery record is the one of
    /// the notification the decision called for (``CustomerNotification/init(decided:decidedAt:)``:
    /// `<id>-<kind>` at revision 0, `<id>-<kind>-r<revision>` above), so a delivery of an
    /// earlier revision never counts for a later decision.
    static func afterDelivery(of status: RentalStatus, _ delivered: RecordDirectory) -> RentalStatus {
        guard let notification = CustomerNotification(decided: status, decidedAt: status.updatedAt.milliseconds),
              let bytes = try? delivered.read(notification.eventId),
              let at = Timestamp(rfc3339: String(decoding: bytes, as: UTF8.self)) else { return status }
        return status.afterDelivery(of: notification.kind, notifiedAt: at, failure: nil, attempts: 0)
    }
}
