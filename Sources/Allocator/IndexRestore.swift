import Foundation
import GRDB
import Intake
import Spool

extension AllocationService {
    /// What ``restoreIndexFromStore()`` did.
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
    /// whose event was merely not projected yet, changes nothing visible. What the store does not
    /// hold cannot be restored here: a later step recorded elsewhere (the notifier's `confirmed`
    /// and delivery stamps) comes back as the allocator's decision (`assigned`, `rejected`,
    /// `cancelled`, `completed`), and the customer is not notified again.
    ///
    /// - Throws: store, index or journal failures; what was appended before stays (harmless).
    public func restoreIndexFromStore() throws -> IndexRestore {
        var result = IndexRestore()
        // One snapshot of decisions and of events not yet published (an allocator publishes
        // those itself); then project the journal, so every decision published before the
        // snapshot is in the index and is not taken for a lost one.
        let (documents, pending) = try store.database.read { db in
            let documents = try String.fetchAll(db, sql: "SELECT status FROM rental ORDER BY request_id")
            let pending = try Data.fetchAll(db, sql: "SELECT payload FROM outbox WHERE kind = 'journal'")
                .compactMap { IndexEvent.decode(Array($0))?.entity }
            return (documents, Set(pending))
        }
        try index.catchUp(from: journal)
        var events: [[UInt8]] = []
        for document in documents {
            guard let status = RentalStatus(document: document), !pending.contains(status.id) else { continue }
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
}
