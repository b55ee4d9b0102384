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
    /// undelivered), runs the daily pass (completes rentals whose period has ended, expires
    /// waiting requests whose start has come) and sweeps `tmp/`. Idempotent;
    /// the power-loss tests run exactly this on every simulated crash state.
    static func startUp(configuration: SystemConfiguration, logger: Logger) throws -> (Spool, Queue, AllocationService, HealthReporter) {
        let spool = try Spool(path: configuration.spoolRoot, create: true, logger: logger)
        let queue = try spool.queue(.allocation, retry: RetryPolicy(maxAttempts: configuration.maxAttempts))
        let service = try AllocationService(spool: spool, configuration: configuration, logger: logger,
                                            dayOffset: testDayOffset(logger: logger))
        let health = HealthReporter(records: try RecordDirectory(spool: spool, path: "state"), logger: logger)
        try service.drainOutbox()
        try service.dailyPass()
        try service.drainOutbox()
        try spool.sweepStaging()
        return (spool, queue, service, health)
    }

    /// Runs until `stop` is triggered: publishes any outbox left by a crash, runs the daily pass,
    /// reports `READY=1`, then processes commands (and, every tick, publishes the outbox, which
    /// also holds the promotions `spoolctl units` made, projects the journal into the index and,
    /// at the first tick of a new day, runs the daily pass).
    ///
    /// - Throws: when the spool or the store cannot be opened (transient failures are retried
    ///   first, see ``StartupRetry``), or after stopping because `journal/` or the queue's
    ///   directories were removed or replaced under it (a restart opens them afresh);
    ///   ``DatabaseDamage`` when the store is damaged, at start-up (`quick_check`) or in use
    ///   (copied to `corrupt/`, left in place; the daemon exits 65 and is not restarted); other
    ///   processing errors are retried
    ///   per item and reported in `state/allocator-health`, never thrown.
    ///
    /// `identity` names the heartbeat file (``DaemonHeartbeat``), refreshed with `STATUS=` from
    /// the supervisor every ``DaemonIdentity/heartbeatInterval``.
    public static func run(configuration: SystemConfiguration, logger: Logger, stop: StopSignal, notifier: SystemdNotifier,
                           identity: DaemonIdentity = DaemonIdentity(program: "spool-allocator")!) throws {
        DaemonMemory.bound()
        // Start-up retries transient failures (several daemons starting together, a full disk).
        let (spool, queue, service, health) = try StartupRetry.run("allocator start-up", logger: logger, stop: stop) {
            try startUp(configuration: configuration, logger: logger)
        }

        var processing = QueueProcessor.Configuration()
        processing.maxWorkers = configuration.allocatorMaxWorkers
        processing.groupLimit = groupLimit
        processing.longestIdlePause = identity.heartbeatInterval
        let damage = Mutex<DatabaseDamage?>(nil)
        let processor = QueueProcessor(queue: queue, configuration: processing, logger: logger, groupHandler: { items in
            do throws(DatabaseDamage) { return try handle(items, service: service, health: health, logger: logger) } catch {
                // The store is damaged: no decision can be trusted now; stop (exit 65) instead of
                // failing every command.
                damage.withLock { $0 = $0 ?? error }
                stop.trigger()
                return items.map { _ in .retry("\(error)") }
            }
        })
        notifier.notify("READY=1\nSTATUS=allocating")
        logger.info("allocator ready", metadata: ["spool": "\(configuration.spoolRoot)", "max_workers": "\(processing.maxWorkers)",
                                                  "instance": "\(identity.instance)"])
        let heartbeat = DaemonHeartbeat(spool: spool, identity: identity, notifier: notifier, logger: logger, unit: "decisions",
                                        interval: identity.heartbeatInterval, backlog: { try queue.backlog(limit: DaemonHeartbeat.backlogLimit) },
                                        throughput: processor.throughput)
        heartbeat.start()
        let lastDay = Mutex(service.today())
        let detached = Mutex(false)
        processor.run(until: stop, notifier: notifier) {
            heartbeat.tick()
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
                let today = service.today()
                let newDay = lastDay.withLock { last -> Bool in
                    defer { last = today }
                    return last != today
                }
                if newDay {
                    try service.dailyPass(today: today, now: Clock.nowMilliseconds())
                    try service.drainOutbox()
                }
            } catch let found as DatabaseDamage {
                damage.withLock { $0 = $0 ?? found }
                stop.trigger()
            } catch {
                logger.error("housekeeping failed", metadata: ["error": "\(error)"])
            }
        }
        logger.info("allocator stopped", metadata: ["processed": "\(processor.processed)"])
        if damage.withLock({ $0 }) == nil, !detached.withLock({ $0 }), !processor.stoppedDetached { heartbeat.stop() }
        if let found = damage.withLock({ $0 }) { throw found }
        if detached.withLock({ $0 }) || processor.stoppedDetached { throw Detached() }
    }

    /// The test hook ``AllocationService/testDayOffsetVariable`` of this process's environment
    /// (0 when unset or invalid), logged at warning when set.
    static func testDayOffset(logger: Logger) -> Int {
        let (offset, invalid) = AllocationService.testDayOffset(environment: ProcessInfo.processInfo.environment)
        if invalid {
            logger.warning("\(AllocationService.testDayOffsetVariable) is not a whole number of days within ±36500; ignored")
        }
        guard let offset else { return 0 }
        logger.warning("test hook: the allocator's date is shifted", metadata: ["variable": "\(AllocationService.testDayOffsetVariable)", "days": "\(offset)"])
        return offset
    }

    /// The allocator stopped because `journal/` or its queue's directories were removed or
    /// replaced under it.
    struct Detached: Error, CustomStringConvertible {
        var description: String { "a spool directory (journal/ or the allocation queue) was removed or replaced while the allocator ran; restart it" }
    }

    /// Most allocation items decided in one store transaction when a backlog exists (group
    /// commit): one commit, one journal append for their status records, one removal sync.
    public static let groupLimit = 16

    /// The commands an allocation item carries (one for a single submit); nil when the payload
    /// does not decode (the item is dead-lettered).
    static func commands(in payload: [UInt8]) -> [AllocationCommand]? {
        if let command = try? JSONDecoder().decode(AllocationCommand.self, from: Data(payload)) { return [command] }
        return nil
    }

    /// Decides one command. Throws only ``DatabaseDamage`` (the store is damaged); any other
    /// failure is a retry of the item.
    static func handle(_ item: ClaimedItem, service: AllocationService, health: HealthReporter, logger: Logger) throws(DatabaseDamage) -> ProcessingOutcome {
        try handle([item], service: service, health: health, logger: logger)[0]
    }

    /// Decides the commands of `items` (claimed together from a backlog) as a group: their
    /// `received` records in one journal append, every decision in one store transaction, the
    /// outbox published once; returns one outcome per item. The group is all or nothing in the
    /// store: if it fails, each item is decided again on its own, so that one failing command
    /// costs only its own item a retry. Throws only ``DatabaseDamage``.
    ///
    /// At-least-once and idempotency hold as for one item: each command's key is recorded as
    /// processed in the transaction that decides it, the messages are published from the outbox
    /// only after the commit, and the items are acknowledged only after publishing; a crash
    /// anywhere in the group redelivers its items, whose commands are then found processed.
    static func handle(_ items: [ClaimedItem], service: AllocationService, health: HealthReporter, logger: Logger) throws(DatabaseDamage) -> [ProcessingOutcome] {
        var outcomes = [ProcessingOutcome](repeating: .done, count: items.count)
        var decided: [(item: Int, command: AllocationCommand)] = []
        for (index, item) in items.enumerated() {
            guard let commands = commands(in: item.payload) ?? batchCommands(item.payload, service: service, logger: logger) else {
                outcomes[index] = .reject("undecodable allocation command")
                continue
            }
            decided += commands.map { (item: index, command: $0) }
        }
        guard !decided.isEmpty else { return outcomes }
        // Best effort: a journal that cannot take it now cannot take the decision either, and
        // the decision (kept in the allocator store, restored by reconcile) carries the request.
        do { try service.journalReceived(decided.map(\.command)) } catch {
            logger.warning("cannot journal the received requests", metadata: ["requests": "\(decided.map(\.command.requestID))", "error": "\(error)"])
        }
        do {
            let decisions = try service.decide(decided.map(\.command))
            try service.drainOutbox()
            health.succeeded()
            for ((index, command), decision) in zip(decided, decisions) {
                let request = command.requestID
                switch decision {
                case .assigned(let unit): logger.info("unit assigned", metadata: ["request": "\(request)", "unit": "\(unit)"])
                case .rejected(let reason): logger.info("request rejected", metadata: ["request": "\(request)", "reason": "\(reason)"])
                case .cancelled: logger.info("rental cancelled, unit released", metadata: ["request": "\(request)"])
                case .noChange: logger.info("command already processed", metadata: ["request": "\(request)", "item": "\(items[index].id)"])
                case .waitlisted: logger.info("request waitlisted", metadata: ["request": "\(request)"])
                case .changed(let status):
                    logger.info("rental changed", metadata: ["request": "\(request)", "to": "\(status.to)", "unit": "\(status.unit ?? "-")"])
                case .refused(let reason): logger.info("change refused", metadata: ["request": "\(request)", "reason": "\(reason)"])
                case .expired: logger.info("waitlisted request expired", metadata: ["request": "\(request)"])
                }
            }
            return outcomes
        } catch let damage as DatabaseDamage {
            health.failed("\(damage)")
            throw damage
        } catch where items.count > 1 {
            logger.warning("group decision failed; deciding its items one by one", metadata: ["items": "\(items.count)", "error": "\(error)"])
            var single: [ProcessingOutcome] = []
            for item in items { single.append(try handle([item], service: service, health: health, logger: logger)[0]) }
            return single
        } catch {
            health.failed("\(error)")
            let request = decided.first?.command.requestID ?? "?"
            logger.error("allocation failed", metadata: ["request": "\(request)", "attempt": "\(items[0].attempts + 1)", "error": "\(error)"])
            return outcomes.map { $0 == .done ? .retry("\(error)") : $0 }
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
