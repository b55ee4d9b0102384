import Foundation
import Intake
import Testing
@testable import Spool

/// Two Unix users and the Postfix-style model: a group owns the spool, `spoolctl` runs setgid to
/// it, nothing in the spool is world-readable. Needs root (to make users, a group and a setgid
/// binary); CI runs as root.
@Suite(.serialized) struct AccessTests {
    private func sh(_ command: String) -> (status: Int32, output: String, errors: String) {
        guard let child = try? ChildProcess("/bin/sh", ["-c", command]) else { return (-1, "", "cannot run sh") }
        return child.finish()
    }

    private func asUser(_ user: String, _ binary: String, _ arguments: [String]) -> (status: Int32, output: String, errors: String) {
        let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
        return sh("runuser -u \(user) -- env -u SPOOL_CONFIG -u SPOOL_ROOT \(binary) \(quoted)")
    }

    @Test(.enabled(if: getuid() == 0, "needs root to create users and a setgid binary"))
    func usersSeeAndCancelOnlyTheirOwnRequests() throws {
        for command in ["getent group spool-e2e || groupadd spool-e2e",
                        "id spool-alice || useradd -M -s /bin/sh spool-alice",
                        "id spool-bob || useradd -M -s /bin/sh spool-bob",
                        "id spool-daemon || useradd -M -s /bin/sh -g spool-e2e spool-daemon"] {
            let result = sh(command)
            try #require(result.status == 0, "\(command): \(result.errors)")
        }
        // A world-traversable place for the setgid copy and the spool.
        let base = "/tmp/spool-e2e-access-\(getpid())"
        defer { _ = sh("rm -rf \(base)") }
        let binary = "\(base)/bin/spoolctl", spool = "\(base)/spool"
        for command in ["mkdir -p \(base)/bin \(spool)", "chmod 755 \(base) \(base)/bin",
                        "cp \(productsDirectory())/spoolctl \(binary)", "chgrp spool-e2e \(binary) \(spool)",
                        "chmod 2755 \(binary)", "chmod 2770 \(spool)"] {
            let result = sh(command)
            try #require(result.status == 0, "\(command): \(result.errors)")
        }
        let submit = ["submit", "--spool", spool, "--customer", "alice@example.com", "--contact", "alice@example.com",
                      "--size", "S", "--from", "2099-01-01", "--months", "1", "--json"]
        let submitted = asUser("spool-alice", binary, submit)
        try #require(submitted.status == 0, "\(submitted.errors)")
        let id = try #require((try JSONSerialization.jsonObject(with: Data(submitted.output.utf8)) as? [String: Any])?["id"] as? String)

        #expect(asUser("spool-alice", binary, ["status", "--spool", spool, id]).status == 0)
        let peek = asUser("spool-bob", binary, ["status", "--spool", spool, id])
        #expect(peek.status == 77)
        #expect(peek.errors.contains("belongs to another user"))
        #expect(asUser("spool-bob", binary, ["cancel", "--spool", spool, id]).status == 77)
        #expect(!asUser("spool-bob", binary, ["list", "--spool", spool]).output.contains(id))
        #expect(asUser("spool-bob", binary, ["status", "--spool", spool, "--customer", "alice@example.com"]).output.contains("no requests"))
        #expect(asUser("spool-bob", binary, ["units", "add", "Z-1", "--size", "S", "--spool", spool]).status == 77)

        // Reading the files directly does not get around it either.
        for path in ["\(spool)/index/status.sqlite", "\(spool)/journal", "\(spool)/queues/allocation/ready"] {
            let direct = sh("runuser -u spool-bob -- ls \(path)")
            #expect(direct.status != 0, "bob can read \(path)")
        }
        let world = sh("find \(spool) -perm -o=r -o -perm -o=w -o -perm -o=x | head -5")
        #expect(world.output.isEmpty, "world-accessible files: \(world.output)")

        // The daemons run as another member of the group and can work on what alice's
        // spoolctl created (journal segments, index, queue items).
        #expect(try ChildProcess("spoolctl", ["units", "add", "A-1", "--size", "S", "--spool", spool]).finish().status == 0)
        let daemon = sh("cp \(productsDirectory())/spool-allocator \(base)/bin/ && chmod 755 \(base)/bin/spool-allocator && "
                        + "runuser -u spool-daemon -- timeout -s TERM 3 \(base)/bin/spool-allocator --spool \(spool); echo exit=$?")
        #expect(daemon.output.contains("exit=124") && !daemon.errors.contains("Permission denied"), "\(daemon.errors)")
        let assigned = asUser("spool-alice", binary, ["status", "--spool", spool, id, "--json"])
        #expect(assigned.output.contains("\"unit\" : \"A-1\""), "\(assigned.output)")

        // Root (an operator) sees everything; alice cancels her own.
        #expect(try ChildProcess("spoolctl", ["status", "--spool", spool, id]).finish().status == 0)
        #expect(asUser("spool-alice", binary, ["cancel", "--spool", spool, id]).status == 0)
    }
}
