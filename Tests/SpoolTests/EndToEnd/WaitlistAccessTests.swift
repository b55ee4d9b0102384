import Foundation
import Intake
import Rentals
import Testing
@testable import Spool

/// The front door's rules for the waiting list: a user waits, sees and cancels only their own
/// requests; only operators put units back in service (and so promote). Needs root, as
/// ``AccessTests``.
@Suite(.serialized) struct WaitlistAccessTests {
    @Test(.enabled(if: getuid() == 0, "needs root to create users and a setgid binary"))
    func usersWaitAndCancelOnlyTheirOwnRequests() throws {
        let install = try SetgidInstallation("waitlist")
        let spool = install.spool
        func asUser(_ user: String, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
            try install.run(as: user, ["spoolctl"] + arguments + ["--spool", spool])
        }
        func submit(_ user: String, _ extra: [String]) throws -> String {
            let result = try asUser(user, ["submit", "--customer", "alice@example.com", "--contact", "alice@example.com", "--size", "S",
                                           "--from", "2099-01-01", "--months", "1", "--json"] + extra)
            try #require(result.status == 0, "\(result.errors)")
            return try #require((try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])?["id"] as? String)
        }
        func allocate() {
            let run = SetgidInstallation.sh("runuser -u spool-daemon -- timeout -s TERM 3 \(install.base)/bin/spool-allocator --spool \(spool); echo exit=$?")
            #expect(run.output.contains("exit=124"), "\(run.errors)")
        }
        #expect(try install.asRoot(["units", "add", "A-1", "--size", "S", "--spool", spool]).status == 0)
        let holder = try submit("spool-alice", [])
        allocate()
        let waiter = try submit("spool-alice", ["--waitlist"])
        allocate()
        let waiting = try asUser("spool-alice", ["status", waiter, "--json"])
        #expect(waiting.output.contains("\"state\" : \"waitlisted\""), "\(waiting.output)")

        // Bob can neither see nor cancel alice's waiting request, nor reinstate a unit.
        let peek = try asUser("spool-bob", ["status", waiter])
        #expect(peek.status == 77 && peek.errors.contains("belongs to another user"))
        #expect(try asUser("spool-bob", ["cancel", waiter]).status == 77)
        #expect(!(try asUser("spool-bob", ["list", "--state", "waitlisted"]).output.contains(waiter)))
        #expect(try asUser("spool-bob", ["units", "retire", "A-1"]).status == 77)
        #expect(try asUser("spool-bob", ["units", "reinstate", "A-1"]).status == 77)
        let forged = try asUser("spool-bob", ["submit", "--customer", "bob", "--contact", "+4915112345678", "--size", "S",
                                              "--from", "2099-01-01", "--months", "1", "--waitlist", "--site", "main\u{1b}[2J"])
        #expect(forged.status == 65, "\(forged.errors)")
        // A retired unit is put back by an operator only.
        #expect(try install.asRoot(["units", "retire", "A-1", "--spool", spool]).status == 0)
        let operatorReinstate = try install.run(as: "spool-carol", ["spoolctl", "units", "reinstate", "A-1", "--spool", spool])
        #expect(operatorReinstate.status == 0, "\(operatorReinstate.errors)")

        // Alice cancels her holder: the allocator (the daemon's user) promotes her waiting request.
        #expect(try asUser("spool-alice", ["list", "--state", "waitlisted"]).output.contains(waiter))
        #expect(try asUser("spool-alice", ["cancel", holder]).status == 0)
        allocate()
        let promoted = try asUser("spool-alice", ["status", waiter, "--json"])
        #expect(promoted.output.contains("\"unit\" : \"A-1\"") && promoted.output.contains("\"revision\" : 1"), "\(promoted.output)")
    }
}
