import Foundation
import Intake
import Rentals
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
        #expect(try system.waitFor(second, .assigned, seconds: 60).unit != nil, "retries the old allocator failed are deferred (backoff)")
        try system.addUnits([("R-3", "M")])
        let third = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01")
        #expect(try system.waitFor(third, .assigned).unit == "R-3")
        #expect(system.stop("spool-allocator") == 0)
    }

    /// A queue's `ready/` removed under its running consumer: the next submit made it again, and
    /// the daemon went on waiting on (and scanning) the removed one without a word, so the
    /// acknowledged request was never decided or delivered until someone restarted it. Each
    /// daemon now stops (the allocator exits 74) and its restart serves the new directory. The
    /// allocator also feeds the notification queue, so it stops for that queue too.
    @Test(arguments: ["allocation", "notifications"])
    func daemonsStopWhenAQueueDirectoryIsRemoved(queue: String) throws {
        let system = try SystemFixture()
        try system.addUnits([("Q-1", "M"), ("Q-2", "M")])
        let environment = system.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 }
        let daemons = try ["spool-allocator", "spool-notifier"].map { try ChildProcess($0, [], environment: environment) }
        defer { for daemon in daemons where daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        let first = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01")
        #expect(try system.waitFor(first, .confirmed).unit != nil)

        try FileManager.default.removeItem(atPath: "\(system.spool)/queues/\(queue)/ready")
        let second = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01")
        // The allocator consumes `allocation` and feeds `notifications`; the notifier consumes
        // `notifications` only.
        let affected = queue == "allocation" ? [0] : [0, 1]
        for index in affected {
            let daemon = daemons[index]
            let stopped = system.eventually(20) { !daemon.process.isRunning }
            #expect(stopped, "daemon \(index) goes on with a removed queues/\(queue)/ready")
            if !stopped { kill(daemon.process.processIdentifier, SIGKILL) }
            let result = daemon.finish()
            #expect(result.status == (index == 0 ? 74 : 0), "\(result.errors)")
            #expect(result.errors.contains(index == 0 && queue == "notifications" ? "the notification queue was removed or replaced"
                                           : "was removed or replaced under the running daemon"), "\(result.errors)")
        }
        for index in affected { try system.start(index == 0 ? "spool-allocator" : "spool-notifier", environment: ["SWIFT_BACKTRACE": "enable=no"]) }
        #expect(try system.waitFor(second, .confirmed, seconds: 60).unit != nil)
        #expect(system.eventually { system.mailbox("alice@example.com").count == 2 }, "one message per outcome")
    }

    /// `corrupt/` (or `tmp/`) removed under the running daemons: every quarantine went into the
    /// removed directory and failed ("cannot quarantine corrupt file", the garbage item stuck in
    /// `active/`), every staged write through a removed `tmp/` failed. The daemons now stop and
    /// their restart makes the directory again.
    @Test(arguments: ["corrupt", "tmp"])
    func daemonsStopWhenCorruptOrTmpIsRemoved(directory: String) throws {
        let system = try SystemFixture()
        try system.addUnits([("C-1", "M")])
        let environment = system.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 }
        let daemons = try ["spool-allocator", "spool-notifier"].map { try ChildProcess($0, [], environment: environment) }
        defer { for daemon in daemons where daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        let first = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01")
        #expect(try system.waitFor(first, .confirmed).unit == "C-1")

        try FileManager.default.removeItem(atPath: "\(system.spool)/\(directory)")
        for (index, daemon) in daemons.enumerated() {
            let stopped = system.eventually(20) { !daemon.process.isRunning }
            #expect(stopped, "daemon \(index) goes on with a removed \(directory)/")
            if !stopped { kill(daemon.process.processIdentifier, SIGKILL) }
            let result = daemon.finish()
            #expect(result.status == (index == 0 ? 74 : 0), "\(result.errors)")
            #expect(result.errors.contains("was removed or replaced under the running daemon"), "\(result.errors)")
        }
        try system.startBoth()
        // A garbage item is quarantined into the new corrupt/, and the system still serves.
        let bucket = "\(system.spool)/queues/allocation/ready/00"
        try FileManager.default.createDirectory(atPath: bucket, withIntermediateDirectories: true)
        try Data("garbage\n".utf8).write(to: URL(fileURLWithPath: "\(bucket)/01m8js6vvtvknxc4t6xbm940y5.0.0"))
        #expect(system.eventually(30) {
            ((try? FileManager.default.contentsOfDirectory(atPath: "\(system.spool)/corrupt")) ?? []).contains { $0.hasPrefix("allocation.") }
        })
        try system.addUnits([("C-2", "M")])
        let second = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01")
        #expect(try system.waitFor(second, .confirmed, seconds: 30).unit == "C-2")
    }
}
