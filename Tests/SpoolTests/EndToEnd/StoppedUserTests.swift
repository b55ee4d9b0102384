import Foundation
import Testing

/// A user may stop (`SIGSTOP`) their own setgid `spoolctl` at any point, and the daemons, running
/// as another user, cannot kill it: it must never hold a lock that the daemons or other users'
/// submits wait for without bound (the journal's lock, the breaker's lock, the index's SQLite
/// write lock, the index's `flock`). Each round stops one of alice's commands while it holds a
/// lock (seen in `/proc/locks`), then requires bob's submit to be acknowledged and decided by the
/// running allocator within a bound; at the end nothing alice or bob submitted is lost or
/// doubled, and the index equals a rebuild from the journal.
@Suite(.serialized) struct StoppedUserTests {
    static let bound: TimeInterval = 15

    @Test func aStoppedSpoolctlHoldsNothingTheDaemonsOrOtherUsersWaitFor() throws {
        let install = try SetgidInstallation("stopped")
        for unit in 1...3 { #expect(try install.asRoot(["units", "add", "S-\(unit)", "--size", "S"]).status == 0) }
        let allocator = try install.start(as: "spool-daemon", ["\(install.base)/bin/spool-allocator", "--spool", install.spool])
        defer {
            for pid in descendants(of: allocator.process.processIdentifier) where executable(pid) == "\(install.base)/bin/spool-allocator" {
                kill(pid, SIGTERM)
            }
            _ = allocator.finish()
        }
        let first = try install.submit(as: "spool-alice", customer: "alice@example.com")
        var bobs: [String] = [], alices: [String] = [first], stoppedHolding = 0
        let submit = ["submit", "--customer", "alice@example.com", "--contact", "alice@example.com", "--size", "S",
                      "--from", "2099-01-01", "--months", "1", "--json"]
        let commands: [[String]] = [submit, submit + ["--wait", "5"], ["status", first], ["list"], ["status", first, "--json"]]
        for round in 0..<15 {
            var command = commands[round % commands.count]
            if round % commands.count == 4, let last = alices.last { command = ["cancel", last] }
            let child = try install.start(as: "spool-alice", [install.binary] + command)
            let pid = findProcess(under: child, executable: install.binary)
            var stopped = false
            if let pid {
                // Stop it at the n-th sighting of a lock it holds (n = 1...3: early and late ones).
                var sightings = 0, wanted = 1 + round % 3
                let deadline = Date().addingTimeInterval(10)
                while Date() < deadline, kill(pid, 0) == 0, !stopped {
                    if !locks(heldBy: pid).isEmpty {
                        sightings += 1
                        if sightings >= wanted {
                            kill(pid, SIGSTOP)
                            stopped = true
                            if !locks(heldBy: pid).isEmpty { stoppedHolding += 1 }
                        }
                    } else if sightings > 0 { wanted = sightings + 1 }
                }
            }
            // With alice's spoolctl stopped, bob's submit is acknowledged and decided in time.
            let started = Date()
            let bob = try install.run(as: "spool-bob", ["timeout", "40", install.binary, "submit", "--customer", "bob@example.com",
                                                        "--contact", "bob@example.com", "--size", "S", "--from", "2099-01-01",
                                                        "--months", "1", "--wait", "\(Int(Self.bound))", "--json"])
            let elapsed = Date().timeIntervalSince(started)
            #expect(bob.status == 0 && elapsed < Self.bound + 5, "round \(round) (\(command[0]), stopped \(stopped)): bob's submit took \(elapsed) s: \(bob.status) \(bob.output) \(bob.errors)")
            if let id = try? JSONSerialization.jsonObject(with: Data(bob.output.utf8)) as? [String: Any], let id = id["id"] as? String {
                bobs.append(id)
            }
            if let pid, stopped {
                kill(pid, round % 2 == 0 ? SIGCONT : SIGKILL)
            }
            // `runuser` stops itself when its child stops (job control), at a moment of its own:
            // continue it until it has finished.
            let finishing = Date().addingTimeInterval(30)
            while child.process.isRunning, Date() < finishing {
                kill(child.process.processIdentifier, SIGCONT)  // `unshare` and `sh` exec `runuser`
                for parent in descendants(of: child.process.processIdentifier) where parent != pid { kill(parent, SIGCONT) }
                usleep(50_000)
            }
            let result = child.finish()
            if command == submit, result.status == 0,
               let object = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
               let id = object["id"] as? String {
                alices.append(id)
            }
        }
        #expect(stoppedHolding >= 3, "the rounds stopped alice's spoolctl holding a lock only \(stoppedHolding) times")

        // Nothing lost or doubled: every acknowledged request is decided, once; the index is the
        // journal's projection.
        // (A cancel killed after withdrawing its request leaves it leased for a minute.)
        var listed: [[String: Any]] = [], ids: [String] = []
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let list = try install.asRoot(["list", "--json"])
            listed = ((try? JSONSerialization.jsonObject(with: Data(list.output.utf8))) as? [[String: Any]]) ?? []
            ids = listed.compactMap { $0["id"] as? String }
            if Set(bobs + alices).isSubset(of: ids), !listed.contains(where: { $0["state"] as? String == "received" }) { break }
            usleep(200_000)
        }
        #expect(Set(ids).count == ids.count, "a request listed twice")
        for id in bobs + alices { #expect(ids.contains(id), "request \(id) lost") }
        #expect(!listed.contains { $0["state"] as? String == "received" }, "undecided requests: \(listed)")
        let before = try install.asRoot(["list", "--json"]).output
        #expect(try install.asRoot(["index", "rebuild"]).status == 0)
        #expect(try install.asRoot(["list", "--json"]).output == before, "the index differs from a rebuild from the journal")
    }

    /// The `spoolctl` process started for `child` (below `unshare`, `sh`, `runuser`, `env`).
    private func findProcess(under child: ChildProcess, executable binary: String) -> Int32? {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, child.process.isRunning {
            if let pid = descendants(of: child.process.processIdentifier).first(where: { executable($0) == binary }) { return pid }
        }
        return nil
    }

    /// The lines of `/proc/locks` for locks `pid` holds (not those it waits for).
    private func locks(heldBy pid: Int32) -> [String] {
        let text = (try? String(contentsOfFile: "/proc/locks", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { line in
            let fields = line.split(separator: " ")
            return !line.contains("->") && fields.count > 4 && fields[4] == "\(pid)"
        }.map(String.init)
    }
}
