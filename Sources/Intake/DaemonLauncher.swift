#if canImport(Glibc)
import Glibc
#endif
import Logging
import Spool

/// What `spool-allocator` and `spool-notifier` share around their work: process settings,
/// configuration, logging, SIGTERM/SIGINT handling and the systemd notifier.
public enum DaemonLauncher {
    /// Prepares the process, loads the configuration (`--config`, `--spool`), installs logging
    /// labelled `label` and the stop signal, then runs `body` until it returns. Returns the exit
    /// code: 0 after a clean stop, 78 for a bad configuration (74 when it could not be read for an I/O
    /// reason), 65 (``DatabaseDamage/exitCode``) when
    /// `body` throws ``DatabaseDamage`` (a restart would not help), 74 when it throws anything else, 77 when the
    /// process is restricted (``SpoolProcess/isRestricted``: started with the spool group's
    /// rights by an ordinary user, e.g. from a setgid wrapper) and the real user is not an
    /// operator, or asked for a configuration or spool the system configuration does not list.
    /// The daemons are not installed setgid; this is defense in depth.
    public static func run(label: String, configPath: String?, spoolOverride: String?,
                           _ body: (SystemConfiguration, Logger, StopSignal, SystemdNotifier) throws -> Void) -> Int32 {
        SpoolProcess.prepare(keeping: SystemConfiguration.environmentVariables)
        let environment = SystemConfiguration.currentEnvironment()
        let logger = DaemonLogging.bootstrap(label, environment: environment)
        let configuration: SystemConfiguration
        do {
            configuration = try SystemConfiguration.load(explicitPath: configPath, spoolOverride: spoolOverride, environment: environment)
        } catch {
            logger.critical("bad configuration", metadata: ["error": "\(error)"])
            return error.refused ? 77 : error.ioErrno != nil ? 74 : 78  // EX_NOPERM, EX_IOERR (restarted), EX_CONFIG
        }
        if SpoolProcess.isRestricted, !Caller.current(operatorGroup: configuration.operatorGroup).isOperator {
            logger.critical("refusing to run with the spool group's rights for a user who is not an operator",
                            metadata: ["uid": "\(getuid())", "operator_group": "\(configuration.operatorGroup)"])
            return 77  // EX_NOPERM
        }
        let stop = StopSignal()
        stop.triggerOnTermination { signal in logger.info("stopping", metadata: ["signal": "\(signal)"]) }
        do {
            try body(configuration, logger, stop, SystemdNotifier(environment: environment))
            return 0
        } catch let damage as DatabaseDamage {
            logger.critical("\(label) cannot run: \(damage)")
            return DatabaseDamage.exitCode  // 65, EX_DATAERR: systemd's RestartPreventExitStatus
        } catch {
            logger.critical("\(label) cannot run", metadata: ["error": "\(error)"])
            return 74  // EX_IOERR
        }
    }
}
