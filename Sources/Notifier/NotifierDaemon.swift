import DaemonRuntime
import Logging
import Rentals
import Spool

/// The notifier daemon (`spool-notifier`): consumes the notification queue with a
/// ``QueueProcessor`` and delivers each message through the ``NotificationService``.
public enum NotifierDaemon {
    /// Most notifications delivered as one group when a backlog exists (group commit: one sync
    /// of each Maildir's `new/`, of `notifier/delivered/`, of the journal and of `active/` for
    /// the group; see ``NotificationService/handle(_:)-([ClaimedItem])``).
    public static let groupLimit = 16

    /// Runs until `stop` is triggered; reports `READY=1` once it is consuming.
    ///
    /// - Throws: when the spool cannot be opened (transient failures are retried first, see
    ///   ``StartupRetry``); delivery failures are retried per item with
    ///   backoff, then dead-lettered, never thrown.
    ///
    /// `identity` names the heartbeat file (``DaemonHeartbeat``), refreshed with `STATUS=` from
    /// the supervisor every ``DaemonIdentity/heartbeatInterval``.
    public static func run(configuration: SystemConfiguration, logger: Logger, stop: StopSignal, notifier: SystemdNotifier,
                           identity: DaemonIdentity = DaemonIdentity(program: "spool-notifier")!) throws {
        DaemonMemory.bound()
        // Start-up retries transient failures (several daemons starting together, a full disk).
        let (spool, queue, service) = try StartupRetry.run("notifier start-up", logger: logger, stop: stop) {
            let spool = try Spool(path: configuration.spoolRoot, create: true, logger: logger)
            let queue = try spool.queue(.notifications, retry: RetryPolicy(maxAttempts: configuration.maxAttempts))
            return (spool, queue, try NotificationService(spool: spool, configuration: configuration, logger: logger))
        }
        var processing = QueueProcessor.Configuration()
        processing.maxWorkers = configuration.notifierMaxWorkers
        // A group runs the hook once per notification: the lease covers a whole group's.
        processing.lease = .seconds(max(300, configuration.hookTimeoutSeconds * (groupLimit + 2)))
        processing.groupLimit = groupLimit
        processing.longestIdlePause = identity.heartbeatInterval
        let processor = QueueProcessor(queue: queue, configuration: processing, logger: logger, groupHandler: { items in
            service.handle(items)
        })
        notifier.notify("READY=1\nSTATUS=delivering notifications")
        logger.info("notifier ready", metadata: ["spool": "\(configuration.spoolRoot)", "maildir": "\(configuration.effectiveMaildirRoot)",
                                                 "hook": "\(configuration.notifyHook.isEmpty ? "none" : configuration.notifyHook)",
                                                 "instance": "\(identity.instance)"])
        let heartbeat = DaemonHeartbeat(spool: spool, identity: identity, notifier: notifier, logger: logger, unit: "deliveries",
                                        interval: identity.heartbeatInterval, backlog: { try queue.backlog(limit: DaemonHeartbeat.backlogLimit) },
                                        throughput: processor.throughput)
        heartbeat.start()
        processor.run(until: stop, notifier: notifier) {
            heartbeat.tick()
            do { try service.index.catchUp(from: service.journal) } catch {
                logger.error("projection failed", metadata: ["error": "\(error)"])
            }
        }
        logger.info("notifier stopped", metadata: ["processed": "\(processor.processed)"])
        if !processor.stoppedDetached { heartbeat.stop() }
    }
}
