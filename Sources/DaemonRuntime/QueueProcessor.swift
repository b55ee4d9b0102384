#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Spool
import Synchronization

/// What a handler decided about one item.
public enum ProcessingOutcome: Sendable, Equatable {
    /// Done: acknowledge (remove) it.
    case done
    /// Failed for now: retry after the queue's backoff (dead-letter at its attempt limit).
    case retry(String)
    /// Can never succeed: dead-letter it at once.
    case reject(String)
}

/// Runs a queue's consumers: a supervisor and a pool of worker threads that grows with the
/// backlog and shrinks when idle (the autoscaler).
///
/// Each worker claims one item at a time under a lease (with a group handler, every item ready
/// at that moment, up to ``Configuration/groupLimit``), hands it to the handler, and then
/// acknowledges, retries or dead-letters it; an idle worker sleeps on inotify. The supervisor,
/// every ``Configuration/tick`` (every ten ticks while the queue stays empty), reclaims expired
/// leases, sizes the pool to
/// `ceil(backlog / itemsPerWorker)` between 1 and ``Configuration/maxWorkers``, runs the
/// caller's periodic work, and pings the systemd watchdog. On ``StopSignal`` the workers finish
/// the item in hand and exit; nothing claimed is abandoned.
public final class QueueProcessor: Sendable {
    /// Tunables.
    public struct Configuration: Sendable {
        /// Most worker threads.
        public var maxWorkers = 4
        /// Backlog per worker before another one starts.
        public var itemsPerWorker = 20
        /// Lease on each claimed item; longer than any handler may take.
        public var lease: Duration = .seconds(300)
        /// Period of the supervisor's housekeeping (and the fallback rescan of idle workers).
        public var tick: Duration = .seconds(1)
        /// Most items a worker hands to a group handler at once (group commit). A worker never
        /// waits to fill a group: it takes what is ready now, so without a backlog each group is
        /// one item.
        public var groupLimit = 1
        /// Longest sleep of the supervisor while the queue stays empty (it sleeps ten ticks then):
        /// the periodic work (the heartbeat) runs at least this often.
        public var longestIdlePause: Duration = .seconds(10)
        /// A configuration with the defaults.
        public init() {}
    }

    let queue: Queue
    let configuration: Configuration
    let logger: Logger
    let handler: @Sendable ([ClaimedItem]) -> [ProcessingOutcome]
    private let pool = Mutex(PoolState())
    private let processedCount = Atomic<Int>(0)
    /// Items handled (any outcome) over the last minute and hour: the heartbeat's rates.
    public let throughput = ThroughputCounter()
    private let detachedFlag = Atomic<Bool>(false)

    struct PoolState {
        var desired = 1
        var running = 0
        var nextIdentifier = 0
    }

    /// A processor for `queue` that calls `handler` for each item.
    public convenience init(queue: Queue, configuration: Configuration, logger: Logger,
                            handler: @escaping @Sendable (ClaimedItem) -> ProcessingOutcome) {
        var single = configuration
        single.groupLimit = 1
        self.init(queue: queue, configuration: single, logger: logger, groupHandler: { items in items.map(handler) })
    }

    /// A processor for `queue` that hands each worker's ready items, up to
    /// ``Configuration/groupLimit`` at once, to `groupHandler`, which returns one outcome per
    /// item, in order. The items that are ``ProcessingOutcome/done`` are then acknowledged
    /// together, with one sync of `active/` (``Queue/acknowledge(_:)-([ClaimedItem])``); the
    /// others are retried or dead-lettered one by one. The handler must have made every effect
    /// of a `done` item durable before it returns (at-least-once: a crash before the
    /// acknowledgement redelivers the whole group, which the handler's idempotency absorbs).
    public init(queue: Queue, configuration: Configuration, logger: Logger,
                groupHandler: @escaping @Sendable ([ClaimedItem]) -> [ProcessingOutcome]) {
        self.queue = queue
        self.configuration = configuration
        self.logger = logger
        self.handler = groupHandler
    }

    /// Items handled so far (any outcome).
    public var processed: Int { processedCount.load(ordering: .relaxed) }

    /// True when ``run(until:notifier:periodic:)`` stopped because the queue's directories, or the
    /// spool's `tmp/` or `corrupt/`, were removed or replaced under it (see ``Queue/isDetached``,
    /// ``Spool/isDetached``); the daemon should exit non-zero
    /// so that a restart opens the queue afresh.
    public var stoppedDetached: Bool { detachedFlag.load(ordering: .relaxed) }

    /// Runs until `stop` is triggered and every worker has finished; blocks the calling thread.
    /// `periodic` runs on the supervisor every tick (outbox draining, projection, health).
    public func run(until stop: StopSignal, notifier: SystemdNotifier, periodic: @Sendable () -> Void = {}) {
        var lastPing = ContinuousClock.now
        var idleRounds = 0
        while !stop.isTriggered {
            if queue.isDetached || queue.spool.isDetached {
                // Enqueuers recreate the directories; items there would wait until a restart,
                // and staging or quarantine through the old `tmp/` or `corrupt/` would fail.
                logger.critical("a spool directory (of the queue, tmp/ or corrupt/) was removed or replaced under the running daemon; stopping so that a restart opens it afresh",
                                metadata: ["queue": "\(queue.name)"])
                detachedFlag.store(true, ordering: .relaxed)
                stop.trigger()
                break
            }
            do {
                try queue.reclaimExpiredLeases()
                let backlog = try queue.backlog(limit: configuration.maxWorkers * configuration.itemsPerWorker)
                resize(backlog: backlog, stop: stop)
                idleRounds = backlog == 0 ? idleRounds + 1 : 0
            } catch {
                logger.error("supervisor cannot read the queue", metadata: ["queue": "\(queue.name)", "error": "\(error)"])
            }
            periodic()
            if let interval = notifier.watchdogInterval, ContinuousClock.now - lastPing >= interval {
                notifier.notify("WATCHDOG=1")
                lastPing = .now
            }
            // An idle queue is looked after every 10 ticks (the workers still wake on inotify).
            let pause = idleRounds > 5 ? min(configuration.tick * 10, max(configuration.tick, configuration.longestIdlePause)) : configuration.tick
            stop.wait(timeout: min(pause, notifier.watchdogInterval ?? pause))
        }
        notifier.notify("STOPPING=1\nSTATUS=finishing items in hand")
        while pool.withLock({ $0.running }) > 0 { usleep(20_000) }
    }

    private func resize(backlog: Int, stop: StopSignal) {
        let wanted = min(configuration.maxWorkers, max(1, (backlog + configuration.itemsPerWorker - 1) / configuration.itemsPerWorker))
        let (previous, toStart) = pool.withLock { state -> (Int, [Int]) in
            let previous = state.desired
            state.desired = wanted
            var identifiers: [Int] = []
            while state.running < wanted {
                state.running += 1
                state.nextIdentifier += 1
                identifiers.append(state.nextIdentifier)
            }
            return (previous, identifiers)
        }
        if wanted != previous {
            logger.info("scaling workers", metadata: ["queue": "\(queue.name)", "from": "\(previous)", "to": "\(wanted)", "backlog": "\(backlog)"])
        }
        for identifier in toStart {
            let thread = Thread { [self] in work(identifier, stop: stop) }
            thread.name = "\(queue.name)-worker-\(identifier)"
            thread.start()
        }
    }

    /// One worker: claim, handle, settle; sleep when idle; leave when the pool shrinks.
    private func work(_ identifier: Int, stop: StopSignal) {
        var counted = true
        defer { if counted { pool.withLock { $0.running -= 1 } } }
        let watcher: QueueWatcher
        do { watcher = try QueueWatcher(queue: queue) } catch {
            logger.error("worker cannot watch the queue", metadata: ["queue": "\(queue.name)", "error": "\(error)"])
            return
        }
        var idleSince = ContinuousClock.now
        while !stop.isTriggered {
            let item: ClaimedItem?
            do { item = try queue.claimNext(lease: configuration.lease) } catch {
                logger.error("claim failed", metadata: ["queue": "\(queue.name)", "error": "\(error)"])
                stop.wait(timeout: configuration.tick)
                continue
            }
            guard let item else {
                // Leave when the pool is larger than wanted and this worker has been idle a while.
                if ContinuousClock.now - idleSince > configuration.tick * 5 {
                    let leaving = pool.withLock { state -> Bool in
                        guard state.running > state.desired else { return false }
                        state.running -= 1
                        return true
                    }
                    if leaving {
                        counted = false
                        return
                    }
                }
                let untilDue = queue.nextDueTime.map { Duration.milliseconds(max(1, $0 - Clock.nowMilliseconds())) }
                queue.resetNextDue()
                watcher.wait(timeout: min(configuration.tick * 5, untilDue ?? configuration.tick * 5), wakeDescriptor: stop.descriptor)
                continue
            }
            idleSince = .now
            var group = [item]
            while group.count < configuration.groupLimit, !stop.isTriggered {
                // Only what is ready now: a group never waits to fill.
                guard let next = try? queue.claimNext(lease: configuration.lease) else { break }
                group.append(next)
            }
            let outcomes = handler(group)
            precondition(outcomes.count == group.count, "a group handler returns one outcome per item")
            settle(group, outcomes: outcomes)
            processedCount.add(group.count, ordering: .relaxed)
            throughput.record(group.count)
        }
    }

    /// Acknowledges the group's done items together (one sync), then settles the others.
    private func settle(_ group: [ClaimedItem], outcomes: [ProcessingOutcome]) {
        guard group.count > 1 else { return settle(group[0], outcome: outcomes[0]) }
        let done = zip(group, outcomes).filter { $0.1 == .done }.map(\.0)
        for (item, error) in queue.acknowledge(done) {
            // As in settle(_:outcome:): the item returns through lease expiry, handled again harmlessly.
            logger.error("cannot settle item", metadata: ["queue": "\(queue.name)", "id": "\(item.id)", "error": "\(error)"])
        }
        for (item, outcome) in zip(group, outcomes) where outcome != .done { settle(item, outcome: outcome) }
    }

    private func settle(_ item: ClaimedItem, outcome: ProcessingOutcome) {
        do {
            switch outcome {
            case .done:
                try queue.acknowledge(item)
            case .retry(let error):
                let result = try queue.retryLater(item, error: error)
                if result == .deadLettered {
                    // An operator must act (`spoolctl dead list`): an error, for `journalctl -p err`.
                    logger.error("dead-lettered after its last attempt", metadata: ["queue": "\(queue.name)", "id": "\(item.id)", "attempts": "\(item.attempts + 1)", "error": "\(error)"])
                } else {
                    logger.warning("will retry", metadata: ["queue": "\(queue.name)", "id": "\(item.id)", "error": "\(error)", "outcome": "\(result)"])
                }
            case .reject(let error):
                try queue.deadLetter(item, error: error)
                logger.error("dead-lettered: it can never succeed", metadata: ["queue": "\(queue.name)", "id": "\(item.id)", "error": "\(error)"])
            }
        } catch {
            // The lease was lost or the disk failed: the item returns through lease expiry and
            // is handled again, which the handler's idempotency makes harmless.
            logger.error("cannot settle item", metadata: ["queue": "\(queue.name)", "id": "\(item.id)", "error": "\(error)"])
        }
    }
}
