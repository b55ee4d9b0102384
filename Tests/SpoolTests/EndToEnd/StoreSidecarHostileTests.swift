import Foundation
import Testing

/// A read-only command of the setgid `spoolctl` never creates a file in the spool as its caller.
/// The allocator's store without its `-wal`/`-shm` files (restored from a backup, or removed by
/// hand, and not opened read-write since): SQLite's read-only connection would create both, owned
/// by the caller. `availability`, `prices list`, `units list` (anyone) and `occupancy` (an
/// operator who is not root) exit 75 instead, and `submit --site` skips its site check.
@Suite(.serialized) struct StoreSidecarHostileTests {
    @Test(.enabled(if: getuid() == 0, "needs root to create users and a setgid binary"))
    func readOnlyCommandsCreateNoStoreFilesAsTheCaller() throws {
        let install = try SetgidInstallation("sidecars", settings: ["currency": "EUR"])
        let spool = install.spool
        #expect(try install.asRoot(["units", "add", "A-1", "--size", "S", "--spool", spool]).status == 0)
        let store = "\(spool)/allocator/state.sqlite"
        func removeSidecars() {
            for suffix in ["-wal", "-shm"] { unlink(store + suffix) }
        }
        func foreignFiles() -> String {
            SetgidInstallation.sh("find \(spool) ! -user root -printf '%u %p\\n'").output
        }
        let commands: [(String, [String])] = [
            ("spool-alice", ["availability", "--size", "S", "--from", "2099-01-01", "--months", "1"]),
            ("spool-alice", ["prices", "list"]),
            ("spool-alice", ["units", "list"]),
            ("spool-carol", ["occupancy"]),
        ]
        for (user, arguments) in commands {
            removeSidecars()
            let result = try install.run(as: user, ["spoolctl"] + arguments + ["--spool", spool])
            #expect(result.status == 75, "\(arguments): \(result.status) \(result.errors)")
            #expect(result.errors.contains("-wal/-shm") && result.errors.split(separator: "\n").count == 1, "\(result.errors)")
            let foreign = foreignFiles()
            #expect(foreign.isEmpty, "\(arguments) created \(foreign)")
            SetgidInstallation.sh("find \(spool) ! -user root -delete")
        }
        // Once a read-write opening made them (here root's), the same commands answer.
        removeSidecars()
        #expect(try install.asRoot(["units", "list", "--spool", spool]).status == 0)
        let answered = try install.run(as: "spool-alice", ["spoolctl", "availability", "--size", "S", "--from", "2099-01-01", "--months", "1",
                                                           "--spool", spool])
        #expect(answered.status == 0 && answered.output.contains("1 unit of size S free"), "\(answered.errors)")
        #expect(foreignFiles().isEmpty)
    }

    /// The status index likewise (`status`, `list --state …`): without its `-wal`, `-shm` or lock
    /// file the caller's answer comes from the journal, and nothing is created as the caller.
    @Test(.enabled(if: getuid() == 0, "needs root to create users and a setgid binary"))
    func readersOfTheStatusIndexCreateNoFilesAsTheCaller() throws {
        let install = try SetgidInstallation("index-sidecars")
        let spool = install.spool
        #expect(try install.asRoot(["units", "add", "A-1", "--size", "S", "--spool", spool]).status == 0)
        let id = try install.submit(as: "spool-alice", customer: "alice@example.com")
        let run = SetgidInstallation.sh("runuser -u spool-daemon -- timeout -s TERM 3 \(install.base)/bin/spool-allocator --spool \(spool); echo exit=$?")
        #expect(run.output.contains("exit=124"), "\(run.errors)")
        let index = "\(spool)/index/status.sqlite"
        try #require(access(index, F_OK) == 0)
        func aliceFiles() -> String { SetgidInstallation.sh("find \(spool) -user spool-alice -printf '%p\\n' | sort").output }
        let before = aliceFiles()  // her submit's queue item and journal (a submit writes as its caller)
        for arguments in [["status", id], ["list", "--state", "assigned"], ["list", "--state", "waitlisted"], ["status", "--customer", "alice@example.com"]] {
            for suffix in [".lock", "-wal", "-shm"] { unlink(index + suffix) }
            let result = try install.run(as: "spool-alice", ["spoolctl"] + arguments + ["--spool", spool])
            #expect(result.status == 0, "\(arguments): \(result.errors)")
            if arguments.last != "waitlisted" { #expect(result.output.contains(id), "\(arguments): \(result.output)") }
            let after = aliceFiles()
            #expect(after == before, "\(arguments) created \(after)")
        }
    }
}
