import ArgumentParser
import DaemonRuntime
import Notifier
import Rentals

/// `spool-notifier`: the notifier daemon. Run by systemd (`Type=notify`), or by `spoolctl up`.
struct NotifierCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool-notifier",
        abstract: "Deliver confirmations, rejections and cancellations to customers.",
        version: BuildVersion.text(program: "spool-notifier"))

    @Option(help: "Spool root (default: SPOOL_ROOT, the configuration file, else ./spool).")
    var spool: String?

    @Option(help: "Configuration file (default: SPOOL_CONFIG, else /etc/self-storage/spool.conf).")
    var config: String?

    @Option(help: "Instance name ([a-z0-9-]{1,32}): names the heartbeat file, the log label and STATUS=.")
    var instance = "main"

    func run() throws {
        let code = DaemonLauncher.run(label: "notifier", program: "spool-notifier", instance: instance, version: Self.configuration.version,
                                      configPath: config, spoolOverride: spool, as: SystemConfiguration.self) {
            try NotifierDaemon.run(configuration: $0, logger: $1, stop: $2, notifier: $3, identity: $4)
        }
        if code != 0 { throw ExitCode(code) }
    }
}

NotifierCommand.main()

/// The rental system's configuration is what the daemon launcher loads.
extension SystemConfiguration: DaemonConfiguration {}
