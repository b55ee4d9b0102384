import Foundation
import Intake
import Rentals
import Synchronization
import Testing
@testable import Spool

/// The status index is a disposable projection (issue 7, items 7 and 8): garbage, a zero-length
/// file or a deleted file never stops a command or a daemon and never hides a request; the
/// unusable file is quarantined in `corrupt/` and the index rebuilt from the journal.
@Suite(.serialized) struct IndexRecoveryTests {
    private func indexPath(_ system: SystemFixture) -> String { "\(system.spool)/index/status.sqlite" }

    /// Overwrites the index with random bytes (its `-wal`/`-shm` stay).
    private func garble(_ system: SystemFixture) throws {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<8192).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try Data(bytes).write(to: URL(fileURLWithPath: indexPath(system)))
    }

    /// Index files moved to `corrupt/`.
    private func quarantined(_ system: SystemFixture) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(system.spool)/corrupt")) ?? []
        return names.filter { $0.hasPrefix("status-index.") && $0.hasSuffix(".sqlite") }.count
    }

    private func listed(_ system: SystemFixture) throws -> Set<String> {
        Set(try system.json([RentalStatus].self, "list").map(\.id))
    }

    @Test func garbageIndexStopsNoCommandAndNoDaemon() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "S"), ("A-2", "S")])
        let first = try system.submit(size: "S", from: "2099-03-01", to: "2099-04-01")

        try garble(system)
        let second = try system.submit(size: "S", from: "2099-03-01", to: "2099-04-01")
        #expect(quarantined(system) == 1, "the garbage is kept in corrupt/")
        try garble(system)
        #expect(try system.status(first).state == .received)
        try garble(system)
        #expect(try listed(system) == [first, second])
        try garble(system)
        let cancel = try system.ctl("cancel", second)
        #expect(cancel.status == 0, "\(cancel.errors)")
        try garble(system)
        let reconcile = try system.ctl("reconcile")
        #expect(reconcile.status == 0, "\(reconcile.errors)")
        try garble(system)
        try system.startBoth()
        #expect(try system.waitFor(first, .confirmed).unit != nil)
        #expect(try system.waitFor(second, .cancelled).unit == nil)
        #expect(quarantined(system) == 6)
        #expect(system.stop("spool-allocator") == 0, "the allocator served and stopped cleanly")
        #expect(system.stop("spool-notifier") == 0, "the notifier served and stopped cleanly")
    }

    @Test func zeroLengthIndexStillShowsTheRequests() throws {
        let system = try SystemFixture()
        let first = try system.submit(size: "S", from: "2099-03-01", to: "2099-04-01")
        let second = try system.submit(size: "M", from: "2099-03-01", to: "2099-04-01")
        #expect(truncate(indexPath(system), 0) == 0)
        #expect(try listed(system) == [first, second])
        #expect(truncate(indexPath(system), 0) == 0)
        #expect(try system.status(second).size == "M")
    }

    @Test func indexDeletedUnderRunningDaemonsIsRebuiltAndKeptCurrent() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "S"), ("A-2", "S"), ("A-3", "S")])
        try system.startBoth()
        let first = try system.submit(size: "S", from: "2099-03-01", to: "2099-04-01")
        _ = try system.waitFor(first, .confirmed)

        // The daemons notice by themselves: the index comes back without any spoolctl command.
        #expect(unlink(indexPath(system)) == 0)
        #expect(system.eventually { FileManager.default.fileExists(atPath: indexPath(system)) }, "the daemons rebuild a deleted index")
        #expect(try system.status(first).state == .confirmed)
        let second = try system.submit(size: "S", from: "2099-03-01", to: "2099-04-01")
        _ = try system.waitFor(second, .confirmed)  // no reconcile needed

        // Deleted with its -wal and -shm, then asked at once.
        for suffix in ["", "-wal", "-shm"] { unlink(indexPath(system) + suffix) }
        #expect(try system.status(first).state == .confirmed)
        let third = try system.submit(size: "S", from: "2099-03-01", to: "2099-04-01")
        _ = try system.waitFor(third, .confirmed)
        #expect(try listed(system) == [first, second, third])

        // The whole index directory removed: the daemons make it again.
        try FileManager.default.removeItem(atPath: "\(system.spool)/index")
        #expect(system.eventually { FileManager.default.fileExists(atPath: indexPath(system)) }, "the daemons rebuild a removed index directory")
        #expect(try system.status(third).state == .confirmed)
        #expect(quarantined(system) == 0, "a missing index is rebuilt, not reported as damage")
    }

    @Test func indexRebuildReplacesAGarbageIndexAtomically() throws {
        let system = try SystemFixture()
        var ids: Set<String> = []
        for month in 1...5 { ids.insert(try system.submit(size: "S", from: "2099-0\(month)-01", to: "2099-0\(month)-20")) }
        try garble(system)
        let rebuild = try system.ctl("index", "rebuild")
        #expect(rebuild.status == 0, "\(rebuild.errors)")
        #expect(rebuild.output.contains("5 requests"), "\(rebuild.output)")
        #expect(quarantined(system) == 1)
        #expect(try listed(system) == ids)

        // A reader in another process during rebuilds sees the old index or the new, never less.
        let index = try StatusIndex(spool: Spool(path: system.spool))
        let done = Atomic<Bool>(false)
        let seen = Mutex<[String]>([])
        let reader = Thread {
            while !done.load(ordering: .acquiring) {
                do {
                    let count = try index.dump().count
                    if count != 5 { seen.withLock { $0.append("\(count) rows") } }
                } catch { seen.withLock { $0.append("\(error)") } }
            }
        }
        reader.start()
        for _ in 0..<6 {
            let again = try system.ctl("index", "rebuild")
            #expect(again.status == 0, "\(again.errors)")
        }
        done.store(true, ordering: .releasing)
        while !reader.isFinished { usleep(10_000) }
        #expect(seen.withLock { $0 }.isEmpty)
        #expect(quarantined(system) == 1, "a healthy index is replaced, not quarantined")
    }

    /// Three allocators and two notifiers starting together on a fresh spool (racing to create
    /// it, its databases and their WAL mode) all start and serve.
    @Test(arguments: 1...3) func fiveDaemonsStartingTogetherAllServe(round: Int) throws {
        let system = try SystemFixture()
        let names = ["spool-allocator", "spool-allocator", "spool-allocator", "spool-notifier", "spool-notifier"]
        let daemons = try names.map { try ChildProcess($0, [], environment: system.environment) }
        defer {
            for daemon in daemons where daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) }
        }
        try system.addUnits([("A-1", "S")])
        let id = try system.submit(size: "S", from: "2099-03-01", to: "2099-04-01")
        _ = try system.waitFor(id, .confirmed)
        for daemon in daemons {
            #expect(daemon.process.isRunning, "round \(round): a daemon exited")
            kill(daemon.process.processIdentifier, SIGTERM)
            let result = daemon.finish()
            #expect(result.status == 0, "round \(round): \(result.errors.suffix(2000))")
        }
    }
}
