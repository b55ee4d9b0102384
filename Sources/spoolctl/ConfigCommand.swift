import ArgumentParser
import Foundation
import Intake
import Rentals
import Spool

/// `spoolctl config`: the configuration file.
struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check the configuration.",
        subcommands: [ConfigCheck.self])
}

/// `spoolctl config check [FILE]`: validates a configuration file and prints the configuration
/// in effect, each key with its value and its source.
///
/// Exit codes: 0 valid (warnings, on stderr or in `warnings`, do not fail it); 78 (EX_CONFIG,
/// as the daemons exit for a bad configuration) invalid, with one line `FILE:LINE: message`;
/// 66 no such file; 77 a file the caller cannot read with their own rights, or one the setgid
/// `spoolctl` refuses them (as for every command); 74 an I/O error.
///
/// Files are read with the caller's real rights, never the spool group's of the setgid binary,
/// so it shows no more than the caller could read with `cat`.
struct ConfigCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a configuration file (default: the one every command would use) and print each key's value and its source.",
        discussion: """
            With FILE, that file is checked as the daemons read it (--config FILE); --spool and SPOOL_ROOT \
            still override spool_root. Without FILE, the lookup of every command: --config, SPOOL_CONFIG, \
            /etc/self-storage/spool.conf, else defaults. A key set twice is valid and the last line wins \
            (warned). Files are read with your own rights: a file you cannot read is refused (77). \
            Exit 0 valid, 78 invalid (FILE:LINE: message), 66 no such file, 77 not permitted, 74 I/O error.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The configuration file to check.")
    var file: String?

    func run() throws {
        let report: ConfigurationReport
        do {
            report = try SystemConfiguration.check(file: file, explicitPath: global.config, spoolOverride: global.spool,
                                                   environment: SystemConfiguration.currentEnvironment(),
                                                   restricted: ProcessRights.isRestricted)
        } catch {
            let code: IntakeError.Code = error.refused ? .notPermitted : error.noSuchFile ? .noInput
                : error.ioErrno != nil ? .ioError : .configuration
            throw Failure(IntakeError(code, visible(error.message)), json: global.json)
        }
        if global.json {
            var object: [String: Any] = [
                "valid": true,
                "file": report.file ?? NSNull(),
                "file_source": report.fileSource.map { $0.description } ?? NSNull(),
                "warnings": report.warnings,
            ]
            object["settings"] = report.settings.map { setting -> [String: Any] in
                var entry: [String: Any] = ["key": setting.key, "value": setting.value,
                                            "source": setting.source.description, "source_kind": setting.source.kind]
                if case .file(let path, let line) = setting.source {
                    entry["path"] = path
                    entry["line"] = line
                }
                return entry
            }
            try printJSONObject(object)
            return
        }
        for warning in report.warnings { complain("warning: \(visible(warning))") }
        try emit(report.file.map { "\($0): valid (\(report.fileSource?.description ?? "argument"))" } ?? "no configuration file: defaults")
        var table = Table(headers: ["KEY", "VALUE", "SOURCE"])
        table.rows = report.settings.map { [$0.key, $0.value.isEmpty ? "-" : visible($0.value), visible($0.source.description)] }
        try emit(table.render())
    }
}

/// `text` with control characters (an escape sequence in a value of someone else's file) and
/// format characters (bidi overrides such as U+202E) shown as `\u{1B}`, so that printing a
/// configuration, a site name from `units import` or a reason never drives the terminal.
func visible(_ text: String) -> String {
    var result = ""
    for scalar in text.unicodeScalars {
        if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format {
            result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
        } else {
            result.unicodeScalars.append(scalar)
        }
    }
    return result
}
