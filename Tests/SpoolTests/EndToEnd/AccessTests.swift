import Foundation
import Intake
import Rentals
import Testing
@testable import Spool

/// Two Unix users and the Postfix-style model: a group owns the spool, `spoolctl` runs setgid to
/// it, nothing in the spool is world-readable. Needs root (to make users, a group and a setgid
/// binary); CI runs as root.
@Suite(.serialized) struct AccessTests {
    private func sh(_ command: String) -> (status: Int32, output: String, errors: String) { SetgidInstallation.sh(command) }

    @Test(.enabled(if: getuid() == 0, "needs root to create users and a setgid binary"))
    func usersSeeAndCancelOnlyTheirOwnRequests() throws {
        // spoolctl setgid spool-e2e in a world-traversable place, its system configuration
        // naming the spool (see SetgidInstallation).
        let install = try SetgidInstallation("access")
        let base = install.base, spool = install.spool
        func asUser(_ user: String, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
            try install.run(as: user, ["spoolctl"] + arguments)
        }
        let submit = ["submit", "--spool", spool, "--customer", "alice@example.com", "--contact", "alice@example.com",
                      "--size", "S", "--from", "2099-01-01", "--months", "1", "--json"]
        let submitted = try asUser("spool-alice", submit)
        try #require(submitted.status == 0, "\(submitted.errors)")
        let id = try #require((try JSONSerialization.jsonObject(with: Data(submitted.output.utf8)) as? [String: Any])?["id"] as? String)

        #expect(try asUser("spool-alice", ["status", "--spool", spool, id]).status == 0)
        let peek = try asUser("spool-bob", ["status", "--spool", spool, id])
        #expect(peek.status == 77)
        #expect(peek.errors.contains("belongs to another user"))
        #expect(try asUser("spool-bob", ["cancel", "--spool", spool, id]).status == 77)
        #expect(!(try asUser("spool-bob", ["list", "--spool", spool]).output.contains(id)))
        #expect(try asUser("spool-bob", ["status", "--spool", spool, "--customer", "alice@example.com"]).output.contains("no requests"))
        #expect(try asUser("spool-bob", ["units", "add", "Z-1", "--size", "S", "--spool", spool]).status == 77)

        // Reading the files directly does not get around it either.
        for path in ["\(spool)/index/status.sqlite", "\(spool)/journal", "\(spool)/queues/allocation/ready"] {
            let direct = sh("runuser -u spool-bob -- ls \(path)")
            #expect(direct.status != 0, "bob can read \(path)")
        }
        let world = sh("find \(spool) -perm -o=r -o -perm -o=w -o -perm -o=x | head -5")
        #expect(world.output.isEmpty, "world-accessible files: \(world.output)")

        // The daemons run as another member of the group and can work on what alice's
        // spoolctl created (journal segments, index, queue items).
        #expect(try install.asRoot(["units", "add", "A-1", "--size", "S", "--spool", spool]).status == 0)
        let daemon = sh("runuser -u spool-daemon -- timeout -s TERM 3 \(base)/bin/spool-allocator --spool \(spool); echo exit=$?")
        #expect(daemon.output.contains("exit=124") && !daemon.errors.contains("Permission denied"), "\(daemon.errors)")
        let assigned = try asUser("spool-alice", ["status", "--spool", spool, id, "--json"])
        #expect(assigned.output.contains("\"unit\" : \"A-1\""), "\(assigned.output)")

        // Root (an operator) sees everything; alice cancels her own.
        #expect(try install.asRoot(["status", "--spool", spool, id]).status == 0)
        #expect(try asUser("spool-alice", ["cancel", "--spool", spool, id]).status == 0)
    }
}
