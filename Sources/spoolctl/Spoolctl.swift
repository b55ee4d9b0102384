import ArgumentParser
import DaemonRuntime
import Foundation
import Intake
import Rentals
import Spool

/// `spoolctl`: the single front door of the rental system.
@main
struct Spoolctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spoolctl",
        abstract: "Rent self-storage units: submit, cancel and look up rental requests; run and operate the spool.",
        discussion: """
            Every command finds the spool from --spool, else SPOOL_ROOT, else the configuration file \
            (--config, SPOOL_CONFIG, /etc/self-storage/spool.conf), else ./spool; for ordinary users of \
            the setgid spoolctl only /etc/self-storage/spool.conf and the files and roots it lists. Every command takes \
            --json. Exit codes follow sysexits: 64 usage, 65 bad data, 66 no such request or unit, \
            73 cannot create, 74 I/O error, 75 try again later, 77 not permitted, 78 invalid \
            configuration file (config check only).
            """,
        version: BuildVersion.text(program: "spoolctl"),
        subcommands: [
            Submit.self, Cancel.self, Status.self, List.self, Units.self,
            Up.self, Reconcile.self, Queues.self, Dead.self, Index.self,
            Compact.self, Stats.self, Config.self, Backup.self,
            Extend.self, End.self,
            Prices.self,
            AvailabilityCommand.self,
            Occupancy.self,
        ])

    /// ArgumentParser has no option with an optional value; `--wait` alone means `--wait 30`.
    /// It also takes a negative number after an option for an option of its own (`--months -1`
    /// is "missing value"): such a number is attached (`--months=-1`), so that validation
    /// names the real problem.
    static func normalizedArguments(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let next = index + 1 < arguments.count ? arguments[index + 1] : nil
            if numericOptions.contains(argument), let next, next.hasPrefix("-"), Int(next) != nil {
                result.append("\(argument)=\(next)")
                index += 2
                continue
            }
            result.append(argument)
            if argument == "--wait", next.flatMap({ Int($0) }) == nil { result.append("30") }
            index += 1
        }
        return result
    }

    /// The options whose value is a number.
    static let numericOptions: Set<String> = ["--months", "--wait"]

    /// Runs the command. All output goes through ``emit(_:)`` and ``complain(_:)`` (`write(2)`,
    /// never trapping): a result that cannot be written to standard output exits 74, an error
    /// line that cannot be written is dropped (the exit code still tells).
    static func main() {
        SpoolProcess.prepare(keeping: SystemConfiguration.environmentVariables)
        if SpoolProcess.hasTooFewDescriptors {
            complain("too few file descriptors (RLIMIT_NOFILE): spoolctl needs at least \(SpoolProcess.minimumDescriptors)")
            Foundation.exit(IntakeError.Code.ioError.rawValue)
        }
        let arguments = normalizedArguments(Array(CommandLine.arguments.dropFirst()))
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let failure as Failure {
            for line in failure.details { complain(line) }
            complain(failure.error.message)
            Foundation.exit(failure.error.code.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                // Help and version: written here too, so that a closed stdout is reported, not ignored.
                if let failed = StandardStream.output.write(fullMessage(for: error) + "\n") {
                    complain("cannot write the help to standard output: \(errnoDescription(failed))")
                    Foundation.exit(IntakeError.Code.ioError.rawValue)
                }
                Foundation.exit(0)
            }
            // Usage errors as one line, values echoed at most 64 characters long.
            let message = Self.message(for: error).split(separator: "\n").first.map(String.init) ?? "usage error"
            complain("\(shortenQuotedValues(message)) (see spoolctl help)")
            Foundation.exit(code == .validationFailure ? 64 : code.rawValue)
        }
    }

    /// `message` with each value ArgumentParser quoted ('…') cut to 64 characters.
    static func shortenQuotedValues(_ message: String) -> String {
        let parts = message.split(separator: "'", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return message }
        return parts.enumerated().map { index, part in
            index % 2 == 1 && part.count > 64 ? part.prefix(64) + "…" : part
        }.joined(separator: "'")
    }
}

/// Where the spool and the configuration are, and who may do what.
///
/// Run setgid by an ordinary user (restricted mode, see ``SystemConfiguration``), `--config`,
/// `--spool`, `SPOOL_CONFIG` and `SPOOL_ROOT` are accepted only as the system configuration
/// allows, and the operator group comes from the system configuration; a refusal exits 77.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Spool root directory.")
    var spool: String?

    @Option(help: "Configuration file.")
    var config: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func configuration() throws -> SystemConfiguration {
        do { return try SystemConfiguration.load(explicitPath: config, spoolOverride: spool) } catch {
            let code: IntakeError.Code = error.refused ? .notPermitted : error.ioErrno != nil ? .ioError : .badData
            throw Failure(IntakeError(code, "configuration: \(error)"), json: json)
        }
    }

    func caller(_ configuration: SystemConfiguration) -> Caller { Caller.current(operatorGroup: configuration.operatorGroup) }

    func intake() throws -> (IntakeService, Caller) {
        let configuration = try configuration()
        let logger = DaemonLogging.bootstrap("spoolctl", environment: ["SPOOL_LOG_LEVEL": "warning"].merging(
            SystemConfiguration.currentEnvironment()) { _, environment in environment })
        do { return (try IntakeService(configuration: configuration, logger: logger), caller(configuration)) } catch {
            throw Failure(error, json: json)
        }
    }

    /// Runs `body`, turning an ``IntakeError`` into a one-line message and its exit code.
    func reporting<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as IntakeError {
            throw Failure(error, json: json)
        }
    }

    func requireOperator(_ caller: Caller, to action: String) throws {
        guard caller.isOperator else {
            throw Failure(IntakeError(.notPermitted, "only root or members of the operator group may \(action)"), json: json)
        }
    }

    /// Refuses (exit 77) unless the real user is root or an operator; call it first, before
    /// anything is read or opened.
    func requireOperator(to action: String) throws {
        try requireOperator(caller(try configuration()), to: action)
    }

    /// For commands that do the daemons' work (`up`, `reconcile`): refuses (exit 77) a caller
    /// who has the spool group's rights only through the setgid bit, unless they are an
    /// operator. The spool's own user (as the reconcile timer runs it) and root are not
    /// restricted. Call it first.
    func requireDaemonRights(to action: String) throws {
        guard SpoolProcess.isRestricted else { return }
        try requireOperator(to: action)
    }
}

/// A failed command: its one line on stderr (after the `details` lines, if any) and its exit
/// code; with --json, also an object on stdout (`error`, `exit_code`, and `details` if any).
struct Failure: Error, CustomStringConvertible {
    let error: IntakeError
    /// Lines reported before the summary line, e.g. one per rejected line of an import.
    let details: [String]

    init(_ error: IntakeError, json: Bool, details: [String] = []) {
        self.error = error
        self.details = details
        if json {
            var object: [String: Any] = ["error": error.message, "exit_code": Int(error.code.rawValue)]
            if let seconds = error.retryAfterSeconds { object["retry_after_seconds"] = seconds }
            if !details.isEmpty { object["details"] = details }
            // Best effort: if stdout cannot be written, the line on stderr and the code still tell.
            StandardStream.output.write(jsonText(object) + "\n")
        }
    }

    var description: String { error.message }
}
