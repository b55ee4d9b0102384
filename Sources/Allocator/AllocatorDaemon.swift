import DaemonRuntime
import Foundation
import Logging
import Rentals
import Spool
import Synchronization

/// The allocator daemon (`spool-allocator`): consumes the allocation queue with a
/// ``QueueProcessor`` and decides each command through the ``AllocationService``.
public enum AllocatorDaemon {
    /// The allocator's start-up recovery, before it takes any item: opens the spool, its
    /// allocation queue and the store, queues what the outbox still holds (messages a crash left
    /// undelivered), completes rentals whose period has ended and sweeps `tmp/`. Idempotent;
    /// the power-loss tests run exactly this on every simulated crash state.
    static func startUp(configuration: SystemConfiguration, logger: Logger) throws -> (Spool, Queue, AllocationService, HealthReporter) {
        let spool = try Spool(path: configuration.spoolRoot, create: true, logger: logger)
        let queue = try spool.queue(.allocation, retry: RetryPolicy(maxAttempts: configuration.maxAttempts))
        let service = try AllocationService(spool: spool, configuration: configuration, logger: logger)
        let health = HealthReporter(records: try RecordDirectory(spool: spool, path: "state"), logger: logger)
        try service.drainOutbox()
        try service.completeEndedRentals()
        try spool.sweepStaging()
        return (spool, queue, service, health)
    }

    /// Runs until `stop` is triggered: publishes any outbox left by a crash, completes ended
    /// rentals, reports `READY=1`, then processes commands (and, every tick, publishes the
    /// outbox, projects the journal into the index and completes ended rentals).
    ///
    /// - Throws: when the spool or the store cannot be opened (transient failures are retried
    ///   first, see ``StartupRetry``), or after stopping because `journal/` or the queue's
    ///   directories were removed or replaced under it (a restart opens them afresh);
    ///   ``DatabaseDamage`` when the store is damaged, at start-up (`quick_check`) or in use
    ///   (copied to `corrupt/`, left in place; the daemon exits 65 and is not restarted); other
    ///   processing errors are retried
    ///   per item and reported in `state/allocator-health`, never thrown.
    public static func run(configuration: SystemConfiguration, logger: Logger, stop: StopSignal, notifier: SystemdNotifier) throws {
        // Start-up retries transient failures (several daemons starting together, a full disk).
        let (_, queue, service, health) = try StartupRetry.run("allocator start-up", logger: logger, stop: stop) {
            try startUp(configuration: configuration, logger: logger)
        }

        var processing = QueueProcessor.Configuration()
        processing.maxWorkers = configuration.allocatorMaxWorkers
        let damage = Mutex<DatabaseDamage?>(nil)
        let processor = QueueProcessor(queue: queue, configuration: processing, logger: logger) { item in
            do throws(DatabaseDamage) { return try handle(item, service: service, health: health, logger: logger) } catch {
                // The store is damaged: no decision can be trusted now; stop (exit 65) instead of
                // failing every command.
                damage.withLock { $0 = $0 ?? error }
                stop.trigger()
                return .retry("\(error)")
            }
        }
        notifier.notify("READY=1\nSTATUS=allocating")
        logger.info("allocator ready", metadata: ["spool": "\(configuration.spoolRoot)", "max_workers": "\(processing.maxWorkers)"])
        let lastDay = Mutex(CalendarDay.today())
        let detached = Mutex(false)
        processor.run(until: stop, notifier: notifier) {
            if damage.withLock({ $0 }) != nil { return }
            // `journal/` or the notification queue (which it feeds) removed or replaced under
            // the running daemon: every decision would fail (or be published where nobody looks)
            // until they are opened afresh.
            if service.journal.isDetached || service.notifications.isDetached {
                let what = service.journal.isDetached ? "journal/" : "the notification queue"
                logger.critical("\(what) was removed or replaced under the running allocator; exiting so that a restart opens it afresh")
                detached.withLock { $0 = true }
                stop.trigger()
                return
            }
            do {
                try service.drainOutbox()
                // The index is a projection: its failure must not hold up the rest.
                do { try service.index.catchUp(from: service.journal) } catch {
                    logger.error("projection failed", metadata: ["error": "\(error)"])
                }
                let today = CalendarDay.today()
                let newDay = lastDay.withLock { last -> Bool in
                    defer { last = today }
                    return last != today
                }
                if newDay { try service.completeEndedRentals(today: today) }
            } catch let found as DatabaseDamage {
                damage.withLock { $0 = $0 ?? found }
                stop.trigger()
            } catch {
                logger.error("housekeeping failed", metadata: ["error": "\(error)"])
            }
        }
        logger.info("allocator stopped", metadata: ["processed": "\(processor.processed)"])
        if let found = damage.withLock({ $0 }) { throw found }
        if detached.withLock({ $0 }) || processor.stoppedDetached { throw Detached() }
    }

    /// The allocator stopped because `journal/` or its queue's directories were removed or
    /// replaced under it.
    struct Detached: Error, CustomStringConvertible {
        var description: String { "a spool directory (journal/ or the allocation queue) was removed or replaced while the allocator ran; restart it" }
    }

    /// Decides one command. Throws only ``DatabaseDamage`` (the store is damaged); any other
    /// failure is a retry of the item.
    static func handle(_ item: ClaimedItem, service: AllocationService, health: HealthReporter, logger: Logger) throws(DatabaseDamage) -> ProcessingOutcome {
        guard let command = try? JSONDecoder().decode(AllocationCommand.self, from: Data(item.payload)) else {
            return .reject("undecodable allocation command")
        }
        let request = command.request.id
        // Best effort: a journal that cannot take it now cannot take the decision either, and
        // the decision (kept in the allocator store, restored by reconcile) carries the request.
        do { try service.journalReceived(command) } catch {
            logger.warning("cannot journal the received request", metadata: ["request": "\(command.request.id)", "error": "\(error)"])
        }
        do {
            let decision = try service.decide(command)
            try service.drainOutbox()
            health.succeeded()
            switch decision {
            case .assigned(let unit): logger.info("unit assigned", metadata: ["request": "\(request)", "unit": "\(unit)"])
            case .rejected(let reason): logger.info("request rejected", metadata: ["request": "\(request)", "reason": "\(reason)"])
            case .cancelled: logger.info("rental cancelled, unit released", metadata: ["request": "\(request)"])
            case .noChange: logger.info("command already processed", metadata: ["request": "\(request)", "item": "\(item.id)"])
            }
            return .done
        } catch let damage as DatabaseDamage {
            health.failed("\(damage)")
            throw damage
        } catch {
            health.failed("\(error)")
            logger.error("allocation failed", metadata: ["request": "\(request)", "attempt": "\(item.attempts + 1)", "error": "\(error)"])
            return .retry("\(error)")
        }
    }
}

/// Keeps `state/allocator-health` current: the count of consecutive failures the breaker reads.
final class HealthReporter: Sendable {
    let records: RecordDirectory
    let logger: Logger
    private let failures = Mutex(-1)  // -1: unknown until the first report

    init(records: RecordDirectory, logger: Logger) {
        self.records = records
        self.logger = logger
    }

    func succeeded() { report(failures: 0, error: nil) }

    func failed(_ error: String) {
        let count = failures.withLock { max($0, 0) + 1 }
        report(failures: count, error: error)
    }

    private func report(failures count: Int, error: String?) {
        let changed = failures.withLock { current -> Bool in
            defer { current = count }
            return current != count
        }
        guard changed else { return }
        var health = AllocatorHealth()
        health.consecutiveFailures = count
        health.lastError = error
        health.updatedAt = Clock.nowMilliseconds()
        do { try records.write(AllocatorHealth.recordName, canonicalJSON(health)) } catch {
            logger.error("cannot write allocator health", metadata: ["error": "\(error)"])
        }
    }
}
