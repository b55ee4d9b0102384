#if canImport(Glibc)
import Glibc
#endif
import Logging
import Spool

/// What a daemon needs of its configuration to start: which environment variables survive the
/// process's scrub, how to load it, which exit code a load failure ends with, and the operator
/// group. The rental system's configuration (`Rentals.SystemConfiguration`) provides it; the
/// daemons declare the conformance, so that this module knows nothing of rentals.
public protocol DaemonConfiguration: Sendable {
    /// Why a configuration could not be loaded.
    associatedtype LoadError: Error
    /// The environment variables ``SpoolProcess/prepare(keeping:)`` must keep.
    static var environmentVariables: Set<String> { get }
    /// The process environment as a dictionary (read after the scrub).
    static func currentEnvironment() -> [String: String]
    /// Loads the configuration for `--config` (`explicitPath`) and `--spool` (`spoolOverride`),
    /// in restricted mode when ``ProcessRights/isRestricted``.
    static func load(explicitPath: String?, spoolOverride: String?, environment: [String: String]) throws(LoadError) -> Self
    /// The exit code for a configuration that could not be loaded: 77 when refused, 74 for an
    /// I/O error (restarted), 78 otherwise.
    static func exitCode(for error: LoadError) -> Int32
    /// The group whose members (and root) may run a daemon in restricted mode.
    var operatorGroup: String { get }
}

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
    ///
    /// `program`, `instance` and `version` make the ``DaemonIdentity`` handed to `body` (the
    /// heartbeat's file name, the log label `label@instance` for an instance other than `main`);
    /// an `instance` outside `[a-z0-9-]{1,32}` exits 64.
    public static func run<Configuration: DaemonConfiguration>(
        label: String, program: String, instance: String = DaemonIdentity.defaultInstance, version: String = "",
        configPath: String?, spoolOverride: String?, as _: Configuration.Type = Configuration.self,
        _ body: (Configuration, Logger, StopSignal, SystemdNotifier, DaemonIdentity) throws -> Void
    ) -> Int32 {
        SpoolProcess.prepare(keeping: Configuration.environmentVariables)
        let environment = Configuration.currentEnvironment()
        guard var identity = DaemonIdentity(program: program, instance: instance, version: version) else {
            let logger = DaemonLogging.bootstrap(label, environment: environment)
            logger.critical("invalid --instance: use 1 to 32 of a-z, 0-9 and -", metadata: ["instance": "\(instance.prefix(64))"])
            return 64  // EX_USAGE
        }
        identity.heartbeatInterval = DaemonHeartbeat.interval(environment: environment)
        let logger = DaemonLogging.bootstrap(identity.logLabel(label), environment: environment)
        let configuration: Configuration
        do {
            configuration = try Configuration.load(explicitPath: configPath, spoolOverride: spoolOverride, environment: environment)
        } catch {
            logger.critical("bad configuration", metadata: ["error": "\(error)"])
            return Configuration.exitCode(for: error)
        }
        if SpoolProcess.isRestricted, !ProcessRights.realUserIsRootOrMember(of: configuration.operatorGroup) {
            logger.critical("refusing to run with the spool group's rights for a user who is not an operator",
                            metadata: ["uid": "\(getuid())", "operator_group": "\(configuration.operatorGroup)"])
            return 77  // EX_NOPERM
        }
        let stop = StopSignal()
        stop.triggerOnTermination { signal in logger.info("stopping", metadata: ["signal": "\(signal)"]) }
        do {
            try body(configuration, logger, stop, SystemdNotifier(environment: environment), identity)
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
