import Foundation
import Intake
import Rentals
import Testing
@testable import Spool

/// `spoolctl up` looks after its daemons (issue 7, item 13): one that dies is restarted with a
/// backoff; one that keeps dying right after its start makes `up` give up with exit 74.
@Suite(.serialized) struct UpSupervisionTests {
    /// The pid of `up`'s child running `name`, if any.
    private func child(of parent: Int32, named name: String) -> Int32? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
            let command = stat[stat.index(after: open)..<close]
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            // A dead child not yet reaped is a zombie ("Z"): not running.
            if command == name, fields.count > 1, fields[0] != "Z", Int32(fields[1]) == parent { return pid }
        }
        return nil
    }

    @Test func upRestartsADaemonKilledWithSIGKILL() throws {
        let system = try SystemFixture()
        let up = try ChildProcess("spoolctl", ["up", "--no-sample"], environment: system.environment)
        defer { if up.process.isRunning { kill(up.process.processIdentifier, SIGKILL) } }
        let parent = up.process.processIdentifier
        var first: Int32?
        #expect(system.eventually { first = child(of: parent, named: "spool-allocator"); return first != nil })
        kill(try #require(first), SIGKILL)
        var second: Int32?
        #expect(system.eventually { second = child(of: parent, named: "spool-allocator"); return second != nil && second != first },
                "up starts a new allocator")
        try system.addUnits([("A-1", "S")])
        let id = try system.submit(size: "S", from: "2099-03-01", to: "2099-04-01")
        _ = try system.waitFor(id, .confirmed)
        kill(parent, SIGTERM)
        let result = up.finish()
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.errors.contains("spool-allocator was killed by signal 9; restarting it"), "\(result.errors)")
    }

    @Test func upGivesUpOnADaemonThatKeepsDying() throws {
        let system = try SystemFixture()
        let up = try ChildProcess("spoolctl", ["up", "--no-sample"], environment: system.environment)
        defer { if up.process.isRunning { kill(up.process.processIdentifier, SIGKILL) } }
        let parent = up.process.processIdentifier
        var killed: Set<Int32> = []
        let gaveUp = system.eventually(40) {
            if let pid = child(of: parent, named: "spool-notifier"), !killed.contains(pid) {
                killed.insert(pid)
                kill(pid, SIGKILL)
            }
            return !up.process.isRunning
        }
        #expect(gaveUp)
        let result = up.finish()
        #expect(result.status == 74, "\(result.errors)")
        #expect(killed.count == 5)
        #expect(result.errors.contains("giving up"), "\(result.errors)")
        #expect(child(of: parent, named: "spool-allocator") == nil, "the allocator was stopped too")
    }
}
