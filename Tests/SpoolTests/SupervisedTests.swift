import Foundation
import Spool
import Testing
@testable import spoolctl

/// `spoolctl up`'s supervision of one daemon: exit 65 (a damaged store) is never restarted.
@Suite struct SupervisedTests {
    private func exited(_ code: Int32) throws -> Supervised.State {
        var child = Supervised(executable: URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", "exit \(code)"])
        try child.start()
        child.process.waitUntilExit()
        return child.supervise()
    }

    @Test func aDaemonThatExits65IsNotRestarted() throws {
        guard case .givingUp(let message) = try exited(DatabaseDamage.exitCode) else {
            Issue.record("exit 65 must not be restarted")
            return
        }
        #expect(message.contains("exited with 65") && message.contains("not restarted"), "\(message)")
    }

    @Test func aDaemonThatExits74IsRestarted() throws {
        guard case .restarting = try exited(74) else {
            Issue.record("exit 74 is restarted")
            return
        }
    }
}
