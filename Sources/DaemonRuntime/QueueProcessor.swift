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
/// Each worker claims one item at a time under a lease, hands it to the handler, and then
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
        /// A configuration with the defaults.
        public init() {}
    }

    let queue: Queue
    let configuration: Configuration
    let logger: Logger
    let handler: @Sendable (ClaimedItem) -> ProcessingOutcome
    private let pool = Mutex(PoolState())
    private let processedCount = Atomic<Int>(0)
    private let detachedFlag = Atomic<Bool>(false)

    struct PoolState {
        var desired = 1
        var running = 0
        var nextIdentifier = 0
    }

    /// A processor for `queue` that calls `handler` for each item.
    public init(queue: Queue, configuration: Configuration, logger: Logger,
                handler: @escaping @Sendable (ClaimedItem) -> ProcessingOutcome) {
        self.queue = queue
        self.configuration = configuration
        self.logger = logger
        self.handler = handler
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
            let pause = idleRounds > 5 ? configuration.tick * 10 : configuration.tick
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
            settle(item, outcome: handler(item))
            processedCount.add(1, ordering: .relaxed)
        }
    }

    private func settle(_ item: ClaimedItem, outcome: ProcessingOutcome) {
        do {
            switch outcome {
            case .done:
                try queue.acknowledge(item)
            case .retry(let error):
                let result = try queue.retryLater(item, error: error)
                logger.warning("will retry", metadata: ["queue": "\(queue.name)", "id": "\(item.id)", "error": "\(error)", "outcome": "\(result)"])
            case .reject(let error):
                try queue.deadLetter(item, error: error)
            }
        } catch {
            // The lease was lost or the disk failed: the item returns through lease expiry and
            // is handled again, which the handler's idempotency makes harmless.
            logger.error("cannot settle item", metadata: ["queue": "\(queue.name)", "id": "\(item.id)", "error": "\(error)"])
        }
    }
}
