import Foundation
import GRDB
import Logging
import Rentals
import Spool

/// What ``RetentionPruning/prune(spool:configuration:now:dryRun:logger:)`` removed (or, in a dry
/// run, would remove).
public struct RetentionPruningReport: Sendable, Encodable, Equatable {
    /// name -> count, e.g. "processed_keys_pruned", "rentals_pruned", "delivered_records_pruned",
    /// "intake_keys_pruned" (snake_case; printed by `spoolctl compact` and its --json)
    public var counts: [String: Int]

    /// A report.
    public init(counts: [String: Int] = [:]) { self.counts = counts }
}

/// Pruning of the records the allocator and the notifier keep for idempotency and for
/// `reconcile`, once they can no longer be needed (issue 10; the argument is in
/// docs/reliability.md, "Retention and the redelivery horizon"):
///
/// 1. **Processed keys whose rental row exists** (`allocate:<id>`, `cancel:<id>`): the row
///    decides the command idempotently by itself (an allocate of a known request is `noChange`;
///    a processed cancel left the rental cancelled, rejected or completed, and a cancel of those
///    is `noChange`), and rows are removed only by step 2, which puts the keys back.
/// 2. **Finished rentals past retention**: ``RetentionPolicy/mayDrop(_:now:)`` on the rental's
///    status with its delivery applied (`notifier/delivered/`, as `reconcile`'s restore does),
///    that the status index does not show unfinished, and that no queue entry (waiting, claimed
///    or dead: `spoolctl dead retry` may bring it back at any time), nor the outbox, mentions.
///    The intake's idempotency keys naming the request are removed first; then, in one store
///    transaction per chunk, the row goes and both its command keys are written as
///    **tombstones** (`processed` rows with the pruning time): a command of the request that
///    still turns up (a race with a listing, a retried submit, a stopped consumer) is decided
///    as `noChange`.
/// 3. **Tombstones older than the redelivery horizon** (``redeliveryHorizonMilliseconds(_:)``)
///    whose request no queue entry or outbox row mentions and the index does not show
///    unfinished, and then (before them, so that a crash leaves the tombstone) the request's
///    **delivery records** older than the horizon.
/// 4. **Idempotency keys** (`intake/keys`) of requests pruned in step 2 or earlier, and of
///    requests that are nowhere (no rental, no key, not in the index, in no queue entry)
///    created longer ago than the horizon (a submit that died before queueing, never
///    acknowledged).
///
/// Nothing that a queue entry or the outbox mentions is pruned, and nothing is pruned without
/// a retention setting (`retention_days = 0` prunes only the redundant keys of step 1).
/// Every step is idempotent and each deletion is durable before the next step relies on it, so
/// a crash (SIGKILL, power loss) anywhere leaves a state the next run finishes; the store's
/// writes are `BEGIN IMMEDIATE` transactions in chunks, beside a running allocator (which waits
/// at most a chunk; busy timeout 30 s).
public enum RetentionPruning {
    /// The longest an allocation command or a notification can keep coming back to its consumer
    /// on its own (retries and expired leases), in milliseconds: `max_attempts` attempts, each at
    /// most a lease (the notifier's, the longer: `max(300 s, hook_timeout × 18)`) plus the
    /// longest backoff (900 s), and at least a day. A dead-lettered item comes back only by an
    /// operator's `dead retry`, at any time: it is never judged by age, but found in `dead/`.
    public static func redeliveryHorizonMilliseconds(_ configuration: SystemConfiguration) -> Int64 {
        let lease = Int64(max(300, configuration.hookTimeoutSeconds * 18))
        let attempts = Int64(max(1, configuration.maxAttempts))
        return max(86_400_000, attempts * (lease + 900) * 1000)
    }

    /// Prunes what can no longer be needed (see the type's description) and returns the counts:
    /// `processed_keys_pruned`, `rentals_pruned`, `delivered_records_pruned`,
    /// `intake_keys_pruned`, and `kept_for_queued_items` (candidates kept because a queue entry
    /// or the outbox mentions them). With `dryRun`, removes nothing and counts what it would.
    ///
    /// Safe beside running allocators, notifiers, submits and `reconcile`, and beside another
    /// pruning; idempotent; crash-safe at every step.
    ///
    /// - Throws: ``DatabaseDamage`` for a damaged store; GRDB, ``SpoolError`` or index failures
    ///   otherwise. What was removed before the failure stays removed (each removal is whole
    ///   and unneeded on its own).
    public static func prune(spool: Spool, configuration: SystemConfiguration,
                             now: Timestamp, dryRun: Bool, logger: Logger) throws -> RetentionPruningReport {
        guard let pruner = try Pruner(spool: spool, configuration: configuration, now: now, dryRun: dryRun, logger: logger) else {
            return RetentionPruningReport(counts: Pruner.zeroCounts)
        }
        return try pruner.run()
    }
}
