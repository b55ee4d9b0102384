import Foundation
import Testing
@testable import Rentals

/// `spoolctl config check [FILE]`, run as the real executable: validation (exit 78 with
/// `FILE:LINE: message`), each value's source, warnings, the JSON shape, and (as root acting
/// as ordinary users of a setgid installation) that it never shows a file its caller could
/// not read.
struct ConfigCheckTests {
    private let directory = TemporaryDirectory("config-check")

    private func write(_ name: String, _ text: String) throws -> String {
        let path = directory.sub(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func check(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String, errors: String) {
        try ChildProcess("spoolctl", ["config", "check"] + arguments,
                         environment: ["SPOOL_CONFIG": "", "SPOOL_ROOT": ""].merging(environment) { $1 }).finish()
    }

    private func object(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
    }

    /// key -> (value, source) from a `--json` report.
    private func settings(_ report: [String: Any]) throws -> [String: (value: String, source: String)] {
        let list = try #require(report["settings"] as? [[String: Any]])
        var result: [String: (String, String)] = [:]
        for entry in list { result[entry["key"] as? String ?? "?"] = (entry["value"] as? String ?? "?", entry["source"] as? String ?? "?") }
        return result
    }

    @Test func aGoodFileIsValidAndEveryKeyIsShownWithItsSource() throws {
        // A byte order mark and CRLF line ends, as an editor on another system writes them.
        let path = try write("good.conf", "\u{FEFF}spool_root = /srv/spool\r\n# a comment\r\nmax_attempts = 3\r\nretention_days = 2000\r\n")
        let result = try check([path, "--json"])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.errors.isEmpty, "no warnings expected: \(result.errors)")
        let report = try object(result.output)
        #expect(report["valid"] as? Bool == true && report["file"] as? String == path && report["file_source"] as? String == "argument")
        #expect((report["warnings"] as? [String])?.isEmpty == true)
        let shown = try settings(report)
        #expect(Set(shown.keys) == Set(SystemConfiguration().keyValues.map(\.key)), "every key, including those added later")
        #expect(shown["spool_root"]! == ("/srv/spool", "file \(path):1"))
        #expect(shown["max_attempts"]! == ("3", "file \(path):3"))
        #expect(shown["retention_days"]! == ("2000", "file \(path):4"))
        #expect(shown["retention_archive"]! == ("yes", "default"))
        #expect(shown["sizes"]! == ("S:1.5, M:3, L:6, XL:10", "default"))
        let entry = try #require((report["settings"] as? [[String: Any]])?.first { $0["key"] as? String == "max_attempts" })
        #expect(entry["source_kind"] as? String == "file" && entry["path"] as? String == path && entry["line"] as? Int == 3)

        let text = try check([path])
        #expect(text.status == 0)
        #expect(text.output.hasPrefix("\(path): valid (argument)\nKEY"), "\(text.output)")
        #expect(text.output.contains("max_attempts") && text.output.contains("file \(path):3"))
    }

    @Test func sourcesOfTheFileAndTheSpoolRootFollowTheLookup() throws {
        let path = try write("lookup.conf", "spool_root = /srv/from-file\n")
        let byEnvironment = try object(try check(["--json"], environment: ["SPOOL_CONFIG": path]).output)
        #expect(byEnvironment["file_source"] as? String == "environment SPOOL_CONFIG" && byEnvironment["file"] as? String == path)
        #expect(try settings(byEnvironment)["spool_root"]! == ("/srv/from-file", "file \(path):1"))
        #expect(try settings(byEnvironment)["max_attempts"]! == ("8", "default"))

        let byFlag = try object(try check(["--config", path, "--json"], environment: ["SPOOL_ROOT": "/srv/env-root"]).output)
        #expect(byFlag["file_source"] as? String == "flag --config")
        #expect(try settings(byFlag)["spool_root"]! == ("/srv/env-root", "environment SPOOL_ROOT"))

        let spoolFlag = try object(try check([path, "--spool", "/srv/flag-root", "--json"], environment: ["SPOOL_ROOT": "/srv/env-root"]).output)
        #expect(try settings(spoolFlag)["spool_root"]! == ("/srv/flag-root", "flag --spool"))

        let missing = try check(["--config", directory.sub("missing.conf")])
        #expect(missing.status == 66, "\(missing.errors)")
        #expect(try check([directory.sub("missing.conf"), "--json"]).status == 66)
    }

    @Test func eachKindOfBadFileExits78WithTheFileAndLine() throws {
        let cases: [(String, [UInt8], String)] = [
            ("unknown", Array("max_attempts = 3\nspool_rot = /x\n".utf8), ":2: unknown key spool_rot"),
            ("range", Array("max_attempts = 0\n".utf8), ":1: max_attempts must be a whole number in 1...1000"),
            ("number", Array("\n\nhook_timeout_seconds = 3s\n".utf8), ":3: hook_timeout_seconds must be a whole number"),
            ("no-equals", Array("spool_root /x\n".utf8), ":1: expected key = value"),
            ("sizes", Array("sizes = S:1.5, S:3\n".utf8), ":1: sizes must look like"),
            ("list", Array("alternate_spool_roots = /a, relative\n".utf8), ":1: alternate_spool_roots must be a comma-separated list of absolute paths"),
            ("flag", Array("retention_archive = maybe\n".utf8), ":1: retention_archive must be yes or no"),
            ("utf8", Array("sender = A\nmax_attempts = 3\nsender = B".utf8) + [0xFF, 0x0A], ":3: not UTF-8 text"),
            ("crlf-unknown", Array("max_attempts = 3\r\nbogus = 1\r\n".utf8), ":2: unknown key bogus"),
            ("breaker", Array("breaker_low_water = 50\nbreaker_high_water = 50\n".utf8), ": breaker_low_water must be below breaker_high_water"),
        ]
        for (name, bytes, expected) in cases {
            let path = directory.sub("\(name).conf")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let result = try check([path])
            #expect(result.status == 78, "\(name): \(result.status) \(result.errors)")
            #expect(result.errors.hasPrefix("spoolctl: \(path)\(expected)"), "\(name): \(result.errors)")
            #expect(result.errors.split(separator: "\n").count == 1 && result.output.isEmpty, "\(name): \(result.errors)")
            let json = try check([path, "--json"])
            let report = try object(json.output)
            #expect(json.status == 78 && report["exit_code"] as? Int == 78 && (report["error"] as? String)?.hasPrefix(path) == true)
        }
    }

    @Test func duplicatesAreValidTheLastWinsAndSuspiciousSettingsAreWarned() throws {
        let path = try write("suspicious.conf", """
            spool_root = relative/spool
            max_attempts = 3
            breaker_high_water = 100
            breaker_low_water = 95
            maildir_root = /var/mail/storage
            max_attempts = 5
            retention_days = 30
            sender = Red \u{1B}[31mAlert

            """)
        let result = try check([path])
        #expect(result.status == 0, "\(result.errors)")
        let warnings = result.errors.split(separator: "\n").map(String.init)
        for expected in ["\(path):2: max_attempts is set again on line 6; the last one wins",
                         "\(path):1: spool_root relative/spool is relative",
                         "\(path):4: breaker_low_water 95 is within 10% of breaker_high_water 100",
                         "\(path):5: maildir_root /var/mail/storage is outside the spool",
                         "\(path):7: retention_days 30 is shorter than the longest rental"] {
            #expect(warnings.contains { $0.hasPrefix("spoolctl: warning: \(expected)") }, "\(expected) in \(warnings)")
        }
        #expect(warnings.count == 5, "\(warnings)")
        #expect(result.output.contains("Red \\u{1B}[31mAlert") && !result.output.contains("\u{1B}"), "no escape reaches the terminal")
        let report = try object(try check([path, "--json"]).output)
        #expect((report["warnings"] as? [String])?.count == 5)
        #expect(try settings(report)["max_attempts"]! == ("5", "file \(path):6"))
    }

    @Test func anOrdinaryUserSeesOnlyWhatTheyCouldReadThemselves() throws {
        let install = try SetgidInstallation("config-check", settings: ["notify_hook": "/usr/local/libexec/secret-hook"])
        let groupOnly = "\(install.base)/group-only.conf", rootOnly = "\(install.base)/root-only.conf", own = "\(install.base)/bobs.conf"
        try Data("sender = SECRET-SENDER\nbogus = SECRET-LINE\n".utf8).write(to: URL(fileURLWithPath: groupOnly))
        try Data("sender = SECRET-SENDER\n".utf8).write(to: URL(fileURLWithPath: rootOnly))
        try Data("max_attempts = 2\n".utf8).write(to: URL(fileURLWithPath: own))
        try SetgidInstallation.require("chgrp \(SetgidInstallation.spoolGroup) \(groupOnly) && chmod 640 \(groupOnly) "
                                       + "&& chmod 600 \(rootOnly) && chown spool-bob \(own) && chmod 600 \(own) "
                                       + "&& ln -s \(groupOnly) \(install.base)/link.conf")
        // A file of the spool group's, directly, through a symbolic link, or root's: refused
        // (77), its content and its validity not shown. Root can check it.
        for probe in [groupOnly, "\(install.base)/link.conf", rootOnly] {
            for arguments in [[probe], [probe, "--json"]] {
                let result = try install.run(as: "spool-bob", ["spoolctl", "config", "check"] + arguments)
                #expect(result.status == 77, "\(probe): \(result.status) \(result.output) \(result.errors)")
                #expect(!(result.output + result.errors).contains("SECRET"), "\(result.output) \(result.errors)")
            }
        }
        let byRoot = try install.run(as: "root", ["spoolctl", "config", "check", groupOnly])
        #expect(byRoot.status == 78 && byRoot.errors.contains(":2: unknown key bogus"), "\(byRoot.errors)")
        let mine = try install.run(as: "spool-bob", ["spoolctl", "config", "check", own, "--json"])
        #expect(mine.status == 0, "\(mine.errors)")

        // Without FILE: the system configuration, as every command reads it, when bob may read
        // it (0644, as installed); another file is refused as for every command.
        let system = try install.run(as: "spool-bob", ["spoolctl", "config", "check", "--json"])
        #expect(system.status == 0, "\(system.errors)")
        let report = try object(system.output)
        #expect(report["file"] as? String == "/etc/self-storage/spool.conf" && report["file_source"] as? String == "default location")
        #expect(try settings(report)["spool_root"]! == (install.spool, "file /etc/self-storage/spool.conf:1"))
        #expect(try install.run(as: "spool-bob", ["spoolctl", "config", "check", "--config", own]).status == 77)
        #expect(try install.run(as: "spool-bob", ["spoolctl", "config", "check"], environment: ["SPOOL_CONFIG": own]).status == 77)
        #expect(try install.run(as: "spool-bob", ["spoolctl", "config", "check", "--spool", "/tmp"]).status == 77)

        // A system configuration kept from ordinary users (0640 root:spool, to keep notify_hook
        // and the alternates private): spoolctl still works for bob, config check shows nothing.
        try SetgidInstallation.require("chgrp \(SetgidInstallation.spoolGroup) \(install.etc)/spool.conf && chmod 640 \(install.etc)/spool.conf")
        let hidden = try install.run(as: "spool-bob", ["spoolctl", "config", "check"])
        #expect(hidden.status == 77, "\(hidden.status) \(hidden.output)")
        #expect(!(hidden.output + hidden.errors).contains("secret-hook") && hidden.output.isEmpty)
        #expect(try install.run(as: "spool-bob", ["spoolctl", "list"]).status == 0)
        let operatorView = try install.run(as: "root", ["spoolctl", "config", "check", "--json"])
        #expect(operatorView.status == 0 && operatorView.output.contains("secret-hook"), "\(operatorView.errors)")
    }

    /// The example configuration the installs put in /etc is valid, sets only defaults and draws
    /// no warning, so a new operator's first `config check` is clean.
    @Test func theShippedConfigurationIsValidAndQuiet() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let path = repository.appendingPathComponent("systemd/spool.conf").path
        let result = try check([path, "--json"])
        #expect(result.status == 0 && result.errors.isEmpty, "\(result.status) \(result.errors)")
        let shown = try settings(try object(result.output))
        let defaults = Dictionary(SystemConfiguration().keyValues.map { ($0.key, $0.value) }) { first, _ in first }
        for (key, setting) in shown where key != "spool_root" {
            #expect(setting.value == defaults[key], "\(key) = \(setting.value) in systemd/spool.conf, default \(defaults[key] ?? "-")")
        }
        #expect(shown["spool_root"]?.value == "/var/spool/self-storage")
    }
}
