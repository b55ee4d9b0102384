import DaemonRuntime
import Foundation
import GRDB
import Logging
import Rentals
import Spool

/// Batch items (`spoolctl submit --batch`, see ``AllocationBatch``): many allocate commands in
/// one allocation-queue item, decided through the allocator's group path
/// (``AllocatorDaemon``'s `handle(_ items:…)`): the item's commands join those of the other
/// items claimed with it and are decided in one store transaction.
///
/// Each request is still decided on its own terms: its own `allocate:<id>` key in `processed`,
/// inserted in the same transaction as its decision and its outbox messages (status event,
/// customer notification). A crash (SIGKILL, power loss) at any point therefore leaves the whole
/// group either decided with its messages in the outbox or not decided at all; the redelivered
/// item finds its requests' keys processed (`noChange`) if the transaction committed, and the
/// start-up drain publishes what the outbox holds: no request is assigned twice and no customer
/// notified twice (the notifier is idempotent per `<request>-<kind>` event id).
extension AllocatorDaemon {
    /// The commands of a batch item for a group decision (see the allocator's group path): one
    /// allocate per request, preceded by a cancel for each request whose cancel waits in the queue
    /// (``queuedCancels(of:service:logger:)``): such a request is decided as that cancel first
    /// (never assigned, one cancellation message), as a single submit withdrawn by its cancel
    /// would be, and its allocate then finds the rental cancelled; nil when `payload` is not a
    /// batch.
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
