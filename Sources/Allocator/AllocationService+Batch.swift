import DaemonRuntime
import Foundation
import GRDB
import Logging
import Rentals
import Spool

/// Batch items (`spoolctl submit --batch`, see ``AllocationBatch``): many allocate commands in
/// one allocation-queue item, decided in a few store transactions instead of one per request.
///
/// Each request is still decided on its own terms: its own `allocate:<id>` key in `processed`,
/// inserted in the same transaction as its decision and its outbox messages (status event,
/// customer notification). A batch is decided in chunks of ``batchChunk`` requests, one
/// transaction each, the outbox published after each chunk. A crash (SIGKILL, power loss) at any
/// point therefore leaves every request either decided with its messages in the outbox or not
/// decided at all; the redelivered item decides only the rest (the others are `noChange`), and
/// the start-up drain publishes what the outbox holds: no request is assigned twice and no
/// customer notified twice (the notifier is idempotent per `<request>-<kind>` event id).
extension AllocationService {
    /// Requests per store transaction when deciding a batch.
    public static let batchChunk = 500

    /// The commands a batch payload carries (one allocate per request), or nil when the payload
    /// is not a batch of a supported version. The allocator's hook for grouped deciding.
    public static func batchCommands(_ payload: [UInt8]) -> [AllocationCommand]? {
        AllocationBatch.decode(payload).map { $0.requests.map(AllocationCommand.allocate) }
    }

    /// Journals, in ONE durable append, the `received` status of the requests of a batch that
    /// the index does not know (a restricted submit journals nothing; see
    /// ``journalReceived(_:)``, which this is for many requests). Idempotent.
    ///
    /// - Throws: ``SpoolError`` when the journal cannot be appended to.
    public func journalReceived(batch requests: [RentalRequest]) throws {
        let missing = requests.filter { (try? index.entity($0.id)) == nil }
        guard !missing.isEmpty else { return }
        try journal.append(missing.map { RentalStatus(received: $0).indexEvent().encoded() }, durability: .durable)
    }

    /// Decides each request of a batch (see the extension's description), publishing the outbox
    /// after each chunk; returns one decision per request, in order (`noChange` for one decided
    /// before).
    ///
    /// - Throws: GRDB's `DatabaseError` (or ``DatabaseDamage``) when the store fails, or the
    ///   outbox cannot be published: the chunks committed before stay decided, the rest is
    ///   decided when the item is retried.
    ///
    /// `cancels` maps the requests whose cancel command waits in the queue to when it was
    /// requested: such a request is decided as that cancel first (never assigned, one
    /// cancellation message), as a single submit withdrawn by its cancel would be; the cancel
    /// command itself then finds its key processed.
    public func decideBatch(_ requests: [RentalRequest], cancels: [String: Int64] = [:], chunk: Int = batchChunk) throws -> [Decision] {
        var decisions: [Decision] = []
        decisions.reserveCapacity(requests.count)
        var start = requests.startIndex
        while start < requests.endIndex {
            let part = requests[start..<min(start + max(1, chunk), requests.endIndex)]
            let now = Clock.nowMilliseconds()
            decisions += try store.write { db in
                try part.map { request in
                    guard let requestedAt = cancels[request.id] else { return try decide(.allocate(request), now: now, in: db) }
                    let cancelled = try decide(.cancel(request, requestedAt: requestedAt), now: now, in: db)
                    _ = try decide(.allocate(request), now: now, in: db)  // processed: a redelivery is a no-op
                    return cancelled
                }
            }
            try drainOutbox()
            start = part.endIndex
        }
        return decisions
    }
}

extension AllocatorDaemon {
    /// Decides one batch item (as ``handle(_:service:health:logger:)`` decides a single
    /// command). Throws only ``DatabaseDamage``; any other failure retries the item, whose
    /// requests decided so far are then `noChange`.
    static func handleBatch(_ batch: AllocationBatch, item: ClaimedItem, service: AllocationService, health: HealthReporter,
                            logger: Logger) throws(DatabaseDamage) -> ProcessingOutcome {
        do { try service.journalReceived(batch: batch.requests) } catch {
            logger.warning("cannot journal the received requests of a batch", metadata: ["batch": "\(batch.batch)", "error": "\(error)"])
        }
        do {
            let decisions = try service.decideBatch(batch.requests, cancels: queuedCancels(of: batch, service: service, logger: logger))
            health.succeeded()
            var assigned = 0, rejected = 0, unchanged = 0
            for decision in decisions {
                switch decision {
                case .assigned: assigned += 1
                case .rejected: rejected += 1
                case .cancelled, .noChange: unchanged += 1
                }
            }
            logger.info("batch decided", metadata: ["batch": "\(batch.batch)", "requests": "\(batch.requests.count)",
                                                    "assigned": "\(assigned)", "rejected": "\(rejected)", "already_decided": "\(unchanged)"])
            return .done
        } catch let damage as DatabaseDamage {
            health.failed("\(damage)")
            throw damage
        } catch {
            health.failed("\(error)")
            logger.error("batch allocation failed", metadata: ["batch": "\(batch.batch)", "attempt": "\(item.attempts + 1)", "error": "\(error)"])
            return .retry("\(error)")
        }
    }

    /// The commands of a batch item for a group decision (see the allocator's group path): one
    /// allocate per request, preceded by a cancel for each request whose cancel waits in the queue
    /// (``queuedCancels(of:service:logger:)``), as ``AllocationService/decideBatch(_:cancels:chunk:)``
    /// decides them; nil when `payload` is not a batch.
    static func batchCommands(_ payload: [UInt8], service: AllocationService, logger: Logger) -> [AllocationCommand]? {
        guard let batch = AllocationBatch.decode(payload) else { return nil }
        let cancels = queuedCancels(of: batch, service: service, logger: logger)
        var commands: [AllocationCommand] = []
        commands.reserveCapacity(batch.requests.count + cancels.count)
        for request in batch.requests {
            if let requestedAt = cancels[request.id] { commands.append(.cancel(request, requestedAt: requestedAt)) }
            commands.append(.allocate(request))
        }
        return commands
    }

    /// The requests of `batch` whose cancel command waits in the allocation queue (found by the
    /// cancel items' names, see ``AllocationBatch/cancelItemID(forRequest:)``; one listing of the
    /// queue per batch), with when each was requested. Best effort: when the queue cannot be
    /// read, the cancels follow the batch as they would follow a single command already claimed.
    static func queuedCancels(of batch: AllocationBatch, service: AllocationService, logger: Logger) -> [String: Int64] {
        do {
            let allocation = try service.notifications.sibling(.allocation, retry: RetryPolicy(maxAttempts: service.configuration.maxAttempts))
            var cancels: [String: Int64] = [:]
            let members = Set(batch.requests.map(\.id))
            for item in try allocation.queuedIDs() {
                guard let request = AllocationBatch.cancelledRequest(byItem: item), members.contains(request),
                      let payload = try allocation.peek(id: item),
                      case .cancel(_, let requestedAt)? = try? JSONDecoder().decode(AllocationCommand.self, from: Data(payload)) else { continue }
                cancels[request] = min(cancels[request] ?? requestedAt, requestedAt)
            }
            return cancels
        } catch {
            logger.warning("cannot look for cancels of the batch's requests", metadata: ["batch": "\(batch.batch)", "error": "\(error)"])
            return [:]
        }
    }
}
