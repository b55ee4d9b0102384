import Foundation
import Rentals
import Spool

extension RetentionPruning {
    /// The retention predicate `spoolctl compact` gives ``Journal/compact(pieceBytes:dryRun:now:mayDrop:archive:)``:
    /// ``RetentionPolicy/mayDrop(latest:now:)``, and only for a request that the status index
    /// (caught up first) shows finished and past retention and that no queue entry (waiting,
    /// claimed or dead) nor outbox row mentions (``ReferenceScan``, as the store's pruning judges
    /// its rows).
    ///
    /// Why: a command or notification that comes back reads the request's status from the index.
    /// A dead confirmation retried (`spoolctl dead retry`, at any time) after its request was
    /// cancelled and then dropped would find no status, so the notifier would not see the
    /// cancellation: it would confirm a cancelled rental to the customer and journal it
    /// `confirmed` again. Kept, the request stays in the journal and the index until its last
    /// queue entry is gone; a later compaction drops it.
    ///
    /// Conservative on failure: if the index or the queues cannot be read, nothing is dropped
    /// (compaction itself still runs). A request journaled but not in the index yet is dropped by
    /// a later run.
    public static func compactionMayDrop(spool: Spool, configuration: SystemConfiguration,
                                         now: Timestamp) -> (IndexEvent) -> Bool {
        let policy = RetentionPolicy(configuration)
        guard policy.days != nil else { return { _ in false } }
        let allowed: Set<String>
        do {
            let journal = try Journal(spool: spool)
            let index = try StatusIndex(spool: spool, journal: journal)
            _ = try index.catchUp(from: journal)
            let candidates = Set(try index.dump().filter { row in
                policy.mayDrop(latest: IndexEvent(entity: row.entity, version: row.version, state: row.state, at: row.updatedAt,
                                                  keys: row.keys, document: row.document), now: now)
            }.map(\.entity))
            // Only the queues that exist (one that does not mentions nothing; opening it would
            // create it, owned by whoever compacts).
            let retry = RetryPolicy(maxAttempts: configuration.maxAttempts)
            var isDirectory: ObjCBool = false
            let queues = try [QueueName.allocation, .notifications].filter { name in
                FileManager.default.fileExists(atPath: "\(spool.path)/queues/\(name.rawValue)", isDirectory: &isDirectory) && isDirectory.boolValue
            }.map { name in try spool.queue(name, retry: retry) }
            var store: AllocatorStore?
            if FileManager.default.fileExists(atPath: "\(spool.path)/allocator/state.sqlite", isDirectory: &isDirectory),
               !isDirectory.boolValue {
                store = try AllocatorStore(spool: spool, readOnly: true)
            }
            let mentioned = try ReferenceScan(candidates: candidates).mentions(outbox: store, queues: queues)
            allowed = candidates.subtracting(mentioned)
        } catch {
            spool.logger.warning("retention skipped: cannot tell which requests queue entries still need",
                                 metadata: ["error": "\(error)"])
            return { _ in false }
        }
        return { event in allowed.contains(event.entity) && policy.mayDrop(latest: event, now: now) }
    }
}
