import Foundation
import Intake
import Testing
@testable import Spool

/// Directories of the spool removed under running daemons, through the real executables.
@Suite(.serialized) struct RemovedDirectoryTests {
    /// `journal/` removed under a running allocator: it used to go on with its descriptor of the
    /// removed directory, failing every decision ("tmp/… not found") until someone restarted it,
    /// so requests sat in `received` and went to the dead letters. It now exits (74) with one
    /// line, and a restart (systemd's `Restart=always`, `spoolctl up`) decides them.
    @Test func allocatorExitsWhenItsJournalDirectoryIsRemoved() throws {
        let system = try SystemFixture()
        try system.addUnits([("R-1", "M"), ("R-2", "M")])
        let allocator = try ChildProcess("spool-allocator", [], environment: system.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 })
        defer { if allocator.process.isRunning { kill(allocator.process.processIdentifier, SIGKILL) } }
        let first = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01")
        #expect(try system.waitFor(first, .assigned).unit != nil)

        try FileManager.default.removeItem(atPath: "\(system.spool)/journal")
        let second = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01")
        let exited = system.eventually(20) { !allocator.process.isRunning }
        #expect(exited, "the allocator goes on with a removed journal/")
        if !exited { kill(allocator.process.processIdentifier, SIGKILL) }
        let result = allocator.finish()
        #expect(result.status == 74)
        #expect(result.errors.contains("journal/ was removed or replaced under the running allocator"), "\(result.errors)")

        try system.start("spool-allocator", environment: ["SWIFT_BACKTRACE": "enable=no"])
        // The removed journal took the first request's events, and the second's decision may have
        // been journaled where the index does not look: reconcile restores both from the
        // allocator store.
        #expect(system.eventually { (try? Spool(path: system.spool).queue(.allocation).counts().ready) == 0 })
        let reconcile = try system.ctl("reconcile")
        #expect(reconcile.status == 0, "\(reconcile.errors)")
        #expect(try system.status(first).state == .assigned)
        #expect(try system.waitFor(second, .assigned).unit != nil)
        try system.addUnits([("R-3", "M")])
        let third = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01")
        #expect(try system.waitFor(third, .assigned).unit == "R-3")
        #expect(system.stop("spool-allocator") == 0)
    }
}
