import DaemonRuntime
import Logging
import Rentals
import Spool

/// The notifier daemon (`spool-notifier`): consumes the notification queue with a
/// ``QueueProcessor`` and delivers each message through the ``NotificationService``.
public enum NotifierDaemon {
    /// Runs until `stop` is triggered; reports `READY=1` once it is consuming.
    ///
    /// - Throws: when the spool cannot be opened (transient failures are retried first, see
    ///   ``StartupRetry``); delivery failures are retried per item with
    ///   backoff, then dead-lettered, never thrown.
    public static func run(configuration: SystemConfiguration, logger: Logger, stop: StopSignal, notifier: SystemdNotifier) throws {
        // Start-up retries transient failures (several daemons starting together, a full disk).
        let (queue, service) = try StartupRetry.run("notifier start-up", logger: logger, stop: stop) {
            let spool = try Spool(path: configuration.spoolRoot, create: true, logger: logger)
            let queue = try spool.queue(.notifications, retry: RetryPolicy(maxAttempts: configuration.maxAttempts))
            return (queue, try NotificationService(spool: spool, configuration: configuration, logger: logger))
        }
        var processing = QueueProcessor.Configuration()
        processing.maxWorkers = configuration.notifierMaxWorkers
        processing.lease = .seconds(max(300, configuration.hookTimeoutSeconds * 3))
        let processor = QueueProcessor(queue: queue, configuration: processing, logger: logger) { item in
            service.handle(item)
        }
        notifier.notify("READY=1\nSTATUS=delivering notifications")
        logger.info("notifier ready", metadata: ["spool": "\(configuration.spoolRoot)", "maildir": "\(configuration.effectiveMaildirRoot)",
                                                 "hook": "\(configuration.notifyHook.isEmpty ? "none" : configuration.notifyHook)"])
        processor.run(until: stop, notifier: notifier) {
            do { try service.index.catchUp(from: service.journal) } catch {
                logger.error("projection failed", metadata: ["error": "\(error)"])
            }
        }
        logger.info("notifier stopped", metadata: ["processed": "\(processor.processed)"])
    }
}
