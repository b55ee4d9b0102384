import Allocator
import ArgumentParser
import Intake
import Spool

/// `spool-allocator`: the allocator daemon. Run by systemd (`Type=notify`), or by `spoolctl up`.
struct AllocatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool-allocator",
        abstract: "Assign storage units to queued rental requests, release cancelled ones.")

    @Option(help: "Spool root (default: SPOOL_ROOT, the configuration file, else ./spool).")
    var spool: String?

    @Option(help: "Configuration file (default: SPOOL_CONFIG, else /etc/self-storage/spool.conf).")
    var config: String?

    func run() throws {
        SpoolProcess.prepare()
        let environment = SystemConfiguration.currentEnvironment()
        let logger = DaemonLogging.bootstrap("allocator", environment: environment)
        let configuration: SystemConfiguration
        do { configuration = try SystemConfiguration.load(explicitPath: config, spoolOverride: spool, environment: environment) } catch {
            logger.critical("bad configuration", metadata: ["error": "\(error)"])
            throw ExitCode(78)
        }
        let stop = StopSignal()
        stop.triggerOnTermination { signal in logger.info("stopping", metadata: ["signal": "\(signal)"]) }
        do {
            try AllocatorDaemon.run(configuration: configuration, logger: logger, stop: stop, notifier: SystemdNotifier(environment: environment))
        } catch {
            logger.critical("allocator cannot run", metadata: ["error": "\(error)"])
            throw ExitCode(74)
        }
    }
}

AllocatorCommand.main()
