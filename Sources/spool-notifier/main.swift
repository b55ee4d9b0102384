import Notifier
import ArgumentParser
import Intake
import Spool

/// `spool-notifier`: the notifier daemon. Run by systemd (`Type=notify`), or by `spoolctl up`.
struct NotifierCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool-notifier",
        abstract: "Deliver confirmations, rejections and cancellations to customers.")

    @Option(help: "Spool root (default: SPOOL_ROOT, the configuration file, else ./spool).")
    var spool: String?

    @Option(help: "Configuration file (default: SPOOL_CONFIG, else /etc/self-storage/spool.conf).")
    var config: String?

    func run() throws {
        SpoolProcess.prepare()
        let environment = SystemConfiguration.currentEnvironment()
        let logger = DaemonLogging.bootstrap("notifier", environment: environment)
        let configuration: SystemConfiguration
        do { configuration = try SystemConfiguration.load(explicitPath: config, spoolOverride: spool, environment: environment) } catch {
            logger.critical("bad configuration", metadata: ["error": "\(error)"])
            throw ExitCode(78)
        }
        let stop = StopSignal()
        stop.triggerOnTermination { signal in logger.info("stopping", metadata: ["signal": "\(signal)"]) }
        do {
            try NotifierDaemon.run(configuration: configuration, logger: logger, stop: stop, notifier: SystemdNotifier(environment: environment))
        } catch {
            logger.critical("notifier cannot run", metadata: ["error": "\(error)"])
            throw ExitCode(74)
        }
    }
}

NotifierCommand.main()
