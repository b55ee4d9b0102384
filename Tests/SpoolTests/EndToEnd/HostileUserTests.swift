import Foundation
import Testing

/// A local user attacks the setgid front door with what a caller controls: configuration files,
/// spool roots, environment, daemon commands, closed descriptors and resource limits (issue 7,
/// items 2 and 3). `spoolctl` is installed setgid (``SetgidInstallation``) and run by ordinary
/// users; needs root, as CI has.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to create users and a setgid binary"))
struct HostileUserTests {
    /// A configuration file of bob's own, naming his personal group as the operators.
    private func bobsConfiguration(_ install: SetgidInstallation) throws -> String {
        let path = "\(install.base)/bob.conf"
        try Data("spool_root = \(install.spool)\noperator_group = spool-bob\n".utf8).write(to: URL(fileURLWithPath: path))
        try SetgidInstallation.require("chown spool-bob \(path) && chmod 644 \(path)")
        return path
    }

    @Test func aConfigurationOfTheCallersOwnIsRefused() throws {
        let install = try SetgidInstallation("own-config")
        let id = try install.submit(as: "spool-alice", customer: "alice@example.com")
        let mine = try bobsConfiguration(install)
        let attempts: [([String], [String: String])] = [
            (["list", "--config", mine], [:]), (["list"], ["SPOOL_CONFIG": mine]),
            (["status", "--customer", "alice@example.com", "--config", mine], [:]),
            (["cancel", id, "--config", mine], [:]), (["cancel", id], ["SPOOL_CONFIG": mine]),
            (["units", "add", "Z-1", "--size", "S", "--config", mine], [:]),
        ]
        for (arguments, environment) in attempts {
            let result = try install.run(as: "spool-bob", ["spoolctl"] + arguments, environment: environment)
            #expect(result.status == 77, "\(arguments) \(environment): \(result.status) \(result.output) \(result.errors)")
            #expect(!result.output.contains(id) && !result.output.contains("alice@example.com"), "\(arguments): \(result.output)")
            #expect(result.errors.contains("is not permitted"), "\(arguments): \(result.errors)")
        }
        let status = try install.asRoot(["status", id, "--json"])
        #expect(status.output.contains("\"received\"") && !status.output.contains("cancel_requested"), "\(status.output)")
        #expect(try install.asRoot(["units", "list"]).output.contains("no units"))
    }

    @Test func aSpoolRootOfTheCallersOwnIsRefusedUnlessTheSystemListsIt() throws {
        let install = try SetgidInstallation("own-spool")
        let planted = "\(install.base)/bobs-spool", listed = "\(install.base)/second-spool"
        try SetgidInstallation.require("mkdir -p \(planted) \(listed) && chown spool-bob \(planted) && chmod 777 \(planted) "
                                       + "&& chgrp \(SetgidInstallation.spoolGroup) \(listed) && chmod 2770 \(listed)")
        let submit = ["spoolctl", "submit", "--customer", "bob@example.com", "--contact", "bob@example.com", "--size", "S",
                      "--from", "2099-01-01", "--months", "1"]
        for (arguments, environment) in [(submit + ["--spool", planted], [String: String]()), (submit, ["SPOOL_ROOT": planted]),
                                         (["spoolctl", "list", "--spool", planted], [:])] {
            let result = try install.run(as: "spool-bob", arguments, environment: environment)
            #expect(result.status == 77, "\(arguments) \(environment): \(result.status) \(result.errors)")
            #expect(result.errors.contains("spool root") && result.errors.contains("is not permitted"), "\(result.errors)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: planted).isEmpty, "spoolctl wrote into the caller's directory")

        // The same root, listed by the system configuration, is accepted; so is the system's own.
        try install.writeSystemConfiguration(["alternate_spool_roots": listed])
        let accepted = try install.run(as: "spool-bob", submit + ["--spool", listed])
        #expect(accepted.status == 0, "\(accepted.errors)")
        #expect(try install.run(as: "spool-bob", submit + ["--spool", install.spool]).status == 0)
    }

    @Test func probingFilesWithConfigGivesOneAnswer() throws {
        let install = try SetgidInstallation("probe")
        _ = try install.submit(as: "spool-alice", customer: "alice@example.com")
        try SetgidInstallation.require("touch \(install.spool)/unreadable && chmod 600 \(install.spool)/unreadable")
        let probes = ["\(install.spool)/index/status.sqlite", "\(install.spool)/no-such-file", "\(install.spool)/unreadable",
                      "\(install.spool)/journal", "/etc/passwd"]
        var answers: Set<String> = []
        for probe in probes {
            let result = try install.run(as: "spool-bob", ["spoolctl", "list", "--config", probe])
            #expect(result.status == 77, "\(probe): \(result.status) \(result.errors)")
            answers.insert("\(result.status) " + result.errors.replacingOccurrences(of: probe, with: "FILE"))
        }
        #expect(answers.count == 1, "answers differ: \(answers)")
    }

    @Test func daemonCommandsAreRefusedToOrdinaryUsers() throws {
        let install = try SetgidInstallation("daemon-commands")
        let id = try install.submit(as: "spool-alice", customer: "alice@example.com")
        let units = "\(install.base)/units.csv"
        try Data("id,size,site\nZ-9,S,main\n".utf8).write(to: URL(fileURLWithPath: units))
        try SetgidInstallation.require("chmod 644 \(units)")
        #expect(try install.asRoot(["units", "add", "A-1", "--size", "M"]).status == 0)
        let commands: [[String]] = [["up", "--no-sample"], ["reconcile"], ["reconcile", "--rebuild-index"],
                                    ["units", "add", "Z-1", "--size", "S"], ["units", "import", units], ["units", "retire", "A-1"],
                                    ["dead", "list"], ["dead", "retry", id], ["dead", "purge", id], ["index", "rebuild"]]
        for command in commands {
            // `timeout`: on a front door that lets bob in, `up` would run until stopped.
            let result = try install.run(as: "spool-bob", ["timeout", "20", install.binary] + command)
            #expect(result.status == 77, "\(command): \(result.status) \(result.output) \(result.errors)")
            let lines = result.errors.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains("only root or members of the operator group"), "\(command): \(result.errors)")
        }
        let inventory = try install.asRoot(["units", "list", "--json"])
        #expect(inventory.output.contains("A-1") && !inventory.output.contains("Z-") && !inventory.output.contains("retired"), "\(inventory.output)")
        #expect(try install.asRoot(["status", id, "--json"]).output.contains("\"received\""))

        // The daemons refuse to run with the spool group's rights for bob (a setgid wrapper, an
        // old spoolctl up); the spool's own user, whose group it is, runs reconcile as the timer does.
        for daemon in ["spool-allocator", "spool-notifier"] {
            let result = try install.run(as: "root", ["setpriv", "--reuid", "spool-bob", "--rgid", "spool-bob", "--init-groups",
                                                      "--egid", SetgidInstallation.spoolGroup, "timeout", "20", "\(install.base)/bin/\(daemon)",
                                                      "--spool", install.spool])
            #expect(result.status == 77, "\(daemon): \(result.status) \(result.errors)")
        }
        let timer = try install.run(as: "spool-daemon", ["spoolctl", "reconcile", "--spool", install.spool])
        #expect(timer.status == 0, "\(timer.errors)")
    }

    @Test func unitsImportReadsTheFileWithTheCallersOwnRights() throws {
        let install = try SetgidInstallation("import-rights")
        let groupOnly = "\(install.base)/group-only.csv", own = "\(install.base)/carols.csv"
        try Data("Q-1,S,main\n".utf8).write(to: URL(fileURLWithPath: groupOnly))
        try Data("Q-2,S,main\n".utf8).write(to: URL(fileURLWithPath: own))
        try SetgidInstallation.require("chgrp \(SetgidInstallation.spoolGroup) \(groupOnly) && chmod 640 \(groupOnly) "
                                       + "&& chown spool-carol \(own) && chmod 600 \(own)")
        // Carol, an operator outside the spool group, cannot have spoolctl read the group's files.
        let refused = try install.run(as: "spool-carol", ["spoolctl", "units", "import", groupOnly])
        #expect(refused.status == 66, "\(refused.status) \(refused.output) \(refused.errors)")
        let imported = try install.run(as: "spool-carol", ["spoolctl", "units", "import", own])
        #expect(imported.status == 0, "\(imported.errors)")
        let units = try install.asRoot(["units", "list"]).output
        #expect(units.contains("Q-2") && !units.contains("Q-1"), "\(units)")
    }

    @Test func anOperatorStillRunsUp() throws {
        let install = try SetgidInstallation("operator-up")
        #expect(try install.asRoot(["units", "add", "A-1", "--size", "S"]).status == 0)
        let id = try install.submit(as: "spool-alice", customer: "alice@example.com")
        // Carol's environment reaches neither spoolctl nor the daemons it starts, but for the
        // locale, the terminal and the time zone.
        let planted = ["TMPDIR": "/tmp/carols", "SQLITE_TMPDIR": "/tmp/carols", "SPOOL_LOG_LEVEL": "trace",
                       "SWIFT_BACKTRACE": "enable=yes", "LANG": "C.UTF-8", "TZ": "UTC", "NOTIFY_SOCKET": "/tmp/carols/notify"]
        // Nor does a descriptor she leaves open (7 here).
        let inherited = "\(install.base)/carols-descriptor"
        try SetgidInstallation.require("touch \(inherited) && chmod 644 \(inherited)")
        let up = try install.start(as: "spool-carol", ["/bin/sh", "-c", #"exec 7<"$0"; exec "$@""#, inherited, install.binary, "up", "--no-sample"],
                                   environment: planted)
        var last = ""
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, up.process.isRunning {
            last = try install.run(as: "spool-alice", ["spoolctl", "status", id, "--json"]).output
            if last.contains("\"confirmed\"") { break }
            usleep(100_000)
        }
        #expect(last.contains("\"confirmed\"") && last.contains("\"A-1\""), "\(last)")
        let daemons = descendants(of: up.process.processIdentifier).filter { executable($0)?.hasPrefix("\(install.base)/bin/spool-") == true }
        #expect(daemons.count == 2)
        for pid in daemons {
            let environment = ((try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))) ?? Data())
                .split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.sorted()
            #expect(environment == ["LANG=C.UTF-8", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TZ=UTC"], "\(environment)")
            let descriptors = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? [])
                .compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") }
            #expect(!descriptors.isEmpty && !descriptors.contains(inherited), "\(descriptors)")
        }
        let carolsList = try install.run(as: "spool-carol", ["spoolctl", "list"])
        #expect(carolsList.status == 0 && carolsList.output.contains(id), "an operator sees every request: \(carolsList.errors)")
        for pid in descendants(of: up.process.processIdentifier) where executable(pid) == install.binary { kill(pid, SIGTERM) }
        let stopped = up.finish()
        #expect(stopped.status == 0 && stopped.output.contains("stopped"), "\(stopped.status) \(stopped.output) \(stopped.errors)")
    }

    @Test func closedStandardDescriptorsNeverReachSpoolFiles() throws {
        let install = try SetgidInstallation("closed-fds")
        let id = try install.submit(as: "spool-alice", customer: "alice@example.com")
        let closing = ["/bin/sh", "-c", #"exec "$@" <&- >&- 2>&-"#, "sh", install.binary]
        // A submit that waits (no allocator runs): while it waits with the spool open, its
        // descriptors 0, 1 and 2 are glibc's stand-ins for a setgid program (/dev/full, and
        // /dev/null read-only), not spool files or directories.
        let waiting = try install.start(as: "spool-bob", closing + ["submit", "--customer", "carl@example.com", "--contact", "carl@example.com",
                                                                    "--size", "S", "--from", "2099-01-01", "--months", "1", "--wait", "60"])
        var targets: [String] = []
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, waiting.process.isRunning, targets.isEmpty {
            for pid in descendants(of: waiting.process.processIdentifier) where executable(pid) == install.binary {
                let links = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? [])
                    .compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") }
                if links.contains(where: { $0.hasPrefix(install.spool) }) {
                    targets = (0...2).map { fd in
                        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")) ?? "closed"
                        let info = (try? String(contentsOfFile: "/proc/\(pid)/fdinfo/\(fd)", encoding: .utf8)) ?? ""
                        let flags = info.split(separator: "\n").first { $0.hasPrefix("flags:") }
                            .flatMap { Int($0.dropFirst(6).trimmingCharacters(in: .whitespaces), radix: 8) } ?? -1
                        return "\(target) \(flags & 3 == O_RDONLY ? "r" : flags & 3 == O_WRONLY ? "w" : "rw")"
                    }
                    kill(pid, SIGKILL)
                }
            }
            usleep(20_000)
        }
        _ = waiting.finish()
        #expect(targets == ["/dev/full w", "/dev/null r", "/dev/null r"], "descriptors 0-2: \(targets)")

        // An answer that cannot be written is exit 74 (nobody got it), error lines go nowhere,
        // the exit codes stay right, and no spool file gets any of it.
        let answered = try install.run(as: "spool-bob", closing + ["list"])
        #expect(answered.status == 74, "\(answered.status)")
        for (arguments, code) in [(["status", id], Int32(77)), (["cancel", "0123456789abcdef0123456789abcdef"], 65)] {
            let result = try install.run(as: "spool-bob", closing + arguments)
            #expect(result.status == code || (arguments[0] == "cancel" && result.status == 77), "\(arguments): \(result.status)")
        }
        let leaked = SetgidInstallation.sh("grep -r -l -a -e accepted -e spoolctl -e 'belongs to another user' \(install.spool)")
        #expect(leaked.output.isEmpty, "spoolctl output written into spool files: \(leaked.output)")
        #expect(try install.asRoot(["status", id]).status == 0)
    }

    @Test func aLowFileSizeLimitDoesNotKillAWriteHalfway() throws {
        let install = try SetgidInstallation("fsize")
        let submit = ["spoolctl", "submit", "--customer", "bob@example.com", "--contact", "bob@example.com", "--size", "S",
                      "--from", "2099-01-01", "--months", "1", "--json"]
        // A soft limit is raised to the hard one: the submit succeeds.
        let soft = try install.run(as: "spool-bob", ["prlimit", "--fsize=64:unlimited", install.binary] + submit.dropFirst())
        #expect(soft.status == 0, "\(soft.status) \(soft.errors)")
        // A hard limit cannot be raised: the write fails with EFBIG and is reported (no SIGXFSZ death).
        let hard = try install.run(as: "spool-bob", ["prlimit", "--fsize=64:64", install.binary] + submit.dropFirst())
        #expect(hard.status == 74, "\(hard.status) \(hard.errors)")
        #expect(hard.errors.hasPrefix("spoolctl: ") && hard.errors.split(separator: "\n").count == 1, "\(hard.errors)")
        let rebuilt = try install.asRoot(["index", "rebuild"])
        #expect(rebuilt.status == 0, "\(rebuilt.output) \(rebuilt.errors)")
        // A restricted submit journals nothing (the allocator, not running here, will): the
        // accepted request waits in the queue, whole.
        let id = ((try? JSONSerialization.jsonObject(with: Data(soft.output.utf8))) as? [String: Any])?["id"] as? String ?? "?"
        #expect(try install.asRoot(["status", id, "--json"]).output.contains("\"received\""), "\(soft.output)")
    }
}
