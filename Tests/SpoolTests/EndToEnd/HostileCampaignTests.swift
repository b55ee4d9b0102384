import Foundation
import Testing

/// Regression tests for the holes the hostile-users campaign (`scripts/torture.d/hostile`,
/// issue 8 item 5) found: `spoolctl` installed setgid (``SetgidInstallation``), an ordinary
/// user attacking another's requests. Needs root, as CI has.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to create users and a setgid binary"))
struct HostileCampaignTests {
    /// An id with the time part of `id` and another random part: it names no request.
    private func missing(like id: String) -> String {
        let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz")
        return String(id.prefix(10)) + String((0..<16).map { _ in alphabet.randomElement()! })
    }

    /// Status and cancel of another user's request answered "belongs to another user" (77), of
    /// an id that names nothing "no request" (66): anyone could learn which ids exist (and, from
    /// an id's time part, when a neighbour rented). Both now get the same answer.
    @Test func anotherUsersRequestIsAnsweredLikeAMissingOne() throws {
        let install = try SetgidInstallation("oracle")
        let id = try install.submit(as: "spool-alice", customer: "alice@example.com")
        let absent = missing(like: id)
        for command in [["status"], ["status", "--json"], ["cancel"], ["cancel", "--json"]] {
            let theirs = try install.run(as: "spool-bob", ["spoolctl", command[0], id] + command.dropFirst())
            let nothing = try install.run(as: "spool-bob", ["spoolctl", command[0], absent] + command.dropFirst())
            #expect(theirs.status == 77, "\(command): \(theirs.status) \(theirs.errors)")
            #expect(theirs.status == nothing.status, "\(command): \(theirs.status) vs \(nothing.status)")
            #expect(theirs.output.replacingOccurrences(of: id, with: "ID") == nothing.output.replacingOccurrences(of: absent, with: "ID"))
            #expect(theirs.errors.replacingOccurrences(of: id, with: "ID") == nothing.errors.replacingOccurrences(of: absent, with: "ID"),
                    "\(command): \(theirs.errors) vs \(nothing.errors)")
        }
        // The owner still sees it; root (an operator) is still told an unknown id is unknown.
        #expect(try install.run(as: "spool-alice", ["spoolctl", "status", id]).status == 0)
        #expect(try install.asRoot(["status", absent]).status == 66)
        #expect(try install.asRoot(["status", id, "--json"]).output.contains("\"received\""))
    }

    /// `spoolctl units list` by an ordinary user opened the allocator's store for writing: it
    /// took the store's lock file (waited for without bound by the allocator, operators and
    /// reconcile: a user who stopped it there held them all up), checked, migrated and wrote
    /// to the file (GRDB's WAL probe). Now it reads through read-only connections.
    @Test func anOrdinaryUsersUnitsListWritesNothingAndHoldsNoLock() throws {
        let install = try SetgidInstallation("units-list")
        // Before the allocator has created its store: no units, and none created.
        let empty = try install.run(as: "spool-bob", ["spoolctl", "units", "list"])
        #expect(empty.status == 0 && empty.output.contains("no units"), "\(empty.status) \(empty.errors)")
        #expect(!FileManager.default.fileExists(atPath: "\(install.spool)/allocator/state.sqlite"))
        #expect(try install.asRoot(["units", "add", "A-1", "--size", "S"]).status == 0)
        let store = "\(install.spool)/allocator/state.sqlite"
        let before = try Data(contentsOf: URL(fileURLWithPath: store))
        // The store's lock file, held by someone else (a stopped spoolctl would hold it so):
        // an ordinary user's list neither waits for it nor takes it.
        let lock = open("\(store).lock", O_RDWR | O_CLOEXEC)
        try #require(lock >= 0 && flock(lock, LOCK_EX) == 0, "cannot hold the store's lock")
        defer { close(lock) }
        for arguments in [["units", "list"], ["units", "list", "--json"]] {
            let result = try install.run(as: "spool-bob", ["timeout", "10", install.binary] + arguments)
            #expect(result.status == 0 && result.output.contains("A-1"), "\(arguments): \(result.status) \(result.errors)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: store)) == before, "an ordinary user's units list wrote to the store")
    }

    /// A caller's tiny `RLIMIT_NOFILE`: an inventory listing that failed in SQLite escaped as a
    /// usage-style error with exit 1 (not a documented code), and with one descriptor fewer
    /// libdispatch trapped (SIGILL, exit 132). A restricted spoolctl now raises the soft limit
    /// and refuses a hard limit below 64 at once, before it opens anything (exit 74).
    @Test func tooFewDescriptorsAreRefusedWithADocumentedExitCode() throws {
        let install = try SetgidInstallation("nofile")
        #expect(try install.asRoot(["units", "add", "A-1", "--size", "S"]).status == 0)
        let id = try install.submit(as: "spool-bob", customer: "bob@example.com")
        for limit in [5, 11, 12, 40] {
            for arguments in [["units", "list"], ["status", id], ["list"]] {
                let result = try install.run(as: "spool-bob", ["prlimit", "--nofile=\(limit):\(limit)", install.binary] + arguments)
                #expect(result.status == 74, "nofile \(limit) \(arguments): \(result.status) \(result.errors)")
                #expect(result.errors == "spoolctl: too few file descriptors (RLIMIT_NOFILE): spoolctl needs at least 64\n",
                        "nofile \(limit) \(arguments): \(result.errors)")
            }
        }
        // A low soft limit alone is raised: the command works.
        let soft = try install.run(as: "spool-bob", ["prlimit", "--nofile=11:4096", install.binary, "units", "list"])
        #expect(soft.status == 0 && soft.output.contains("A-1"), "\(soft.status) \(soft.errors)")
    }

    /// A locale variable naming a missing path (`LC_ALL=/nonexistent`, kept by the scrubbed
    /// environment) crashed ICU under Foundation (SIGSEGV, exit 139) in every `--json` error
    /// answer of the setgid spoolctl. Locale variables are now kept only with a locale name.
    @Test func aLocaleNamingAPathDoesNotCrashSpoolctl() throws {
        let install = try SetgidInstallation("locale")
        let id = try install.submit(as: "spool-alice", customer: "alice@example.com")
        for variable in ["LC_ALL", "LANG", "LC_MESSAGES"] {
            for value in ["/nonexistent", "/nonexistent/x.UTF-8"] {
                let status = try install.run(as: "spool-bob", ["spoolctl", "status", id, "--json"], environment: [variable: value])
                #expect(status.status == 77 && status.output.contains("\"exit_code\" : 77"), "\(variable)=\(value): \(status.status) \(status.errors)")
                let list = try install.run(as: "spool-bob", ["spoolctl", "list", "--state", "bogus", "--json"], environment: [variable: value])
                #expect(list.status == 64 && list.output.contains("\"exit_code\" : 64"), "\(variable)=\(value): \(list.status) \(list.errors)")
            }
        }
        // A locale name is still passed on.
        let named = try install.run(as: "spool-bob", ["spoolctl", "list", "--state", "bogus", "--json"], environment: ["LANG": "C.UTF-8"])
        #expect(named.status == 64, "\(named.status) \(named.errors)")
    }
}
