import Foundation
import Logging
import Rentals
import Testing
@testable import Allocator
@testable import Spool

/// A retention pruning stopped at any step (an error, or SIGKILL of its process) leaves a state
/// from which nothing is lost or decided twice, and which the next run finishes.
@Suite struct RetentionPruningCrashTests {
    static let requests = ["done", "cancelled", "live", "fill1", "fill2", "rejected", "silent"]

    /// A world with the history of ``RetentionPruningTests/history(_:)`` and idempotency keys;
    /// returns it with the two pruning times: one past retention, one past the tombstones' horizon.
    static func world(hook: Bool = true) throws -> (PruningWorld, [Int64]) {
        let world = try PruningWorld(hook: hook)
        try world.recordKey("0-k-rejected", for: world.request("rejected", "2098-01-01", "2098-02-01"))
        try world.recordKey("0-k-done", for: world.request("done", "2000-01-01", "2000-02-01"))
        try world.recordKey("0-k-live", for: world.request("live", "2099-01-01", "2099-02-01"))
        let completion = try RetentionPruningTests.history(world)
        let first = completion + PruningWorld.day + 1
        return (world, [first, first + world.horizon + 1])
    }

    /// What must hold after any prefix of a run: a request's delivery records stay while its row
    /// does; its idempotency keys go before its row; its row goes only with both tombstones
    /// written, and a tombstone goes only after the request's delivery records.
    static func checkInvariants(_ world: PruningWorld, phase: Int, _ label: String) throws {
        let state = try world.state()
        let keyed = ["rejected": "0-k-rejected", "done": "0-k-done", "live": "0-k-live"]
        for id in requests {
            let records = state.delivered.filter { $0.hasPrefix("\(id)-") }
            if state.rentals[id] != nil {
                #expect(records.count == (id == "silent" ? 0 : 1), "\(label): \(id) lost a record: \(state)")
            } else {
                if let key = keyed[id] { #expect(!state.keys.contains(key), "\(label): \(id)'s row went before its key") }
                let tombstones = state.processed.keys.filter { $0 == "allocate:\(id)" || $0 == "cancel:\(id)" }
                #expect(tombstones.count == 2 || records.isEmpty, "\(label): \(id) has neither its row nor its tombstones, but records: \(state)")
            }
        }
        // Before the horizon, every late command is still decided once: the store knows each request.
        let decisions = try world.allocator.store.read { db in
            try requests.map { id in
                try Bool.fetchOne(db, sql: "SELECT 1 FROM rental WHERE request_id = ?", arguments: [id]) == true
                    || (try Bool.fetchOne(db, sql: "SELECT 1 FROM processed WHERE key = ?", arguments: ["allocate:\(id)"]) == true)
            }
        }
        if phase == 0 { #expect(decisions.allSatisfy { $0 }, "\(label): a request is unknown to the store before the horizon: \(state)") }
    }

    struct Stop: Error {}

    /// Stops the run before its `k`th durable step, for every `k`, in both phases; after each
    /// stop the invariants hold, and the finished runs end where an uninterrupted one does.
    @Test func aRunStoppedBeforeAnyStepIsFinishedByTheNext() throws {
        let (reference, times) = try Self.world(hook: false)
        for now in times { _ = try reference.prune(now: now) }
        let expected = try reference.state()
        var k = 0
        while true {
            let (world, times) = try Self.world(hook: false)
            var stopped = false
            for (phase, now) in times.enumerated() {
                var step = 0
                do {
                    _ = try RetentionPruning.prune(spool: world.spool, configuration: world.configuration, now: Timestamp(milliseconds: now),
                                                   dryRun: false, logger: Logger(label: "test"), chunk: 1) { _ in
                        defer { step += 1 }
                        if step == k { throw Stop() }
                    }
                } catch is Stop {
                    stopped = true
                    try Self.checkInvariants(world, phase: phase, "phase \(phase) stopped before step \(k)")
                }
                _ = try world.prune(now: now)
                try Self.checkInvariants(world, phase: phase, "phase \(phase) after a stop at \(k)")
            }
            #expect(try world.state() == expected, "stopped at step \(k)")
            guard stopped else { break }
            k += 1
        }
        #expect(k >= 14, "every durable step of both phases was a stopping point")
    }

    /// SIGKILL of a pruning process (`spool-prune-driver`) at random moments, run after run
    /// until one finishes, in both phases: the invariants hold after every kill, the end state
    /// is the uninterrupted one, and late commands and notifications decide nothing twice.
    @Test(arguments: 0..<2)
    func sigkillAtRandomPointsLosesNothingAndDoublesNothing(seed: Int) throws {
        var random = SeededGenerator(seed: UInt64(seed) &+ 31)
        let (reference, referenceTimes) = try Self.world(hook: false)
        for now in referenceTimes { _ = try reference.prune(now: now) }
        let expected = try reference.state()
        let (world, times) = try Self.world()
        var kills = 0
        for (phase, now) in times.enumerated() {
            // Kills at a random moment within a window that widens with each kill, so that a run
            // eventually finishes however slow the machine is; after 40 kills, none.
            var window: UInt32 = 30_000
            while true {
                let driver = try ChildProcess("spool-prune-driver", [world.spool.path, "1", "\(now)", "1", "3000"])
                if kills < 40 {
                    usleep(UInt32.random(in: 0..<window, using: &random))
                    if driver.process.isRunning { kill(driver.process.processIdentifier, SIGKILL) }
                }
                window += 15_000
                let result = driver.finish()
                if result.status == 0 && driver.process.terminationReason == .exit { break }
                #expect(driver.process.terminationReason == .uncaughtSignal, "\(result.errors)")
                guard driver.process.terminationReason == .uncaughtSignal else { return }
                kills += 1
                try Self.checkInvariants(world, phase: phase, "phase \(phase) after kill \(kills)")
            }
            if phase == 0 { try Self.lateCopiesChangeNothing(world) }
        }
        #expect(try world.state() == expected)
        #expect(kills > 0)
    }

    /// Late copies of the pruned requests' commands and notifications, before the horizon.
    static func lateCopiesChangeNothing(_ world: PruningWorld) throws {
        let runs = world.hookRuns()
        let before = try world.state()
        let late = [("done", "2000-01-01", "2000-02-01"), ("rejected", "2098-01-01", "2098-02-01"), ("cancelled", "2099-05-01", "2099-06-01")]
        for (id, from, to) in late {
            #expect(try world.decide([.allocate(world.request(id, from, to)), .cancel(world.request(id, from, to), requestedAt: 3)]) == [.noChange, .noChange])
        }
        #expect(try world.deliverAll() == 0 && world.hookRuns() == runs)
        #expect(try world.state() == before)
    }
}
