import Foundation
import GRDB
import Logging
import Rentals
import Testing
@testable import Allocator
@testable import Spool

/// The retention pruning of the allocator's store and the notifier's and intake's records
/// (issue 10), in process.
@Suite struct RetentionPruningTests {
    /// A history on `world`: `done` completed, `rejected` and `cancelled` notified, `silent`
    /// rejected but never notified (its notification lost), `live`, `fill1`, `fill2` assigned.
    /// Returns the time of the completion, the latest change of a finished request.
    static func history(_ world: PruningWorld) throws -> Int64 {
        try world.decide([.allocate(world.request("done", "2000-01-01", "2000-02-01")),
                          .allocate(world.request("cancelled", "2099-05-01", "2099-06-01")),
                          .allocate(world.request("live", "2099-01-01", "2099-02-01")),
                          .allocate(world.request("fill1", "2098-01-01", "2098-02-01")),
                          .allocate(world.request("fill2", "2098-01-01", "2098-02-01")),
                          .allocate(world.request("rejected", "2098-01-01", "2098-02-01")),
                          .allocate(world.request("silent", "2098-01-01", "2098-02-01"))])
        try world.decide([.cancel(world.request("cancelled", "2099-05-01", "2099-06-01"), requestedAt: 1)])
        let lost = try #require(try world.notifications.claim(id: ItemID("silent-rejection")!, lease: .seconds(60)))
        try world.notifications.acknowledge(lost)
        #expect(try world.deliverAll() == 7, "cancelled's confirmation is superseded, not delivered")
        usleep(2_000)
        let completion = Clock.nowMilliseconds()
        #expect(try world.allocator.completeEndedRentals(today: CalendarDay(iso: "2026-01-01")!, now: completion) == 1)
        try world.allocator.drainOutbox()
        return completion
    }

    /// Runs a dry run, then the pruning, at `now`: the dry run changes nothing and counts what
    /// the pruning then does.
    static func pruneChecked(_ world: PruningWorld, now: Int64) throws -> [String: Int] {
        let before = try world.state()
        let planned = try world.prune(now: now, dryRun: true)
        #expect(try world.state() == before, "a dry run removes nothing")
        let done = try world.prune(now: now)
        #expect(planned == done, "the dry run counts what the pruning does")
        return done
    }

    @Test func prunesExactlyWhatRetentionAndTheHorizonAllow() throws {
        let world = try PruningWorld()
        try world.recordKey("0-k-rejected", for: world.request("rejected", "2098-01-01", "2098-02-01"))
        try world.recordKey("0-k-live", for: world.request("live", "2099-01-01", "2099-02-01"))
        try world.recordKey("0-k-ghost", for: world.request("ghost", "2099-01-01", "2099-02-01"))  // never queued
        let completion = try Self.history(world)
        let day = PruningWorld.day, horizon = world.horizon

        // Before the retention: only the keys that rental rows make redundant.
        var counts = try Self.pruneChecked(world, now: completion)
        #expect(counts["processed_keys_pruned"] == 8 && counts["rentals_pruned"] == 0, "\(counts)")
        #expect(counts["intake_keys_pruned"] == 1, "the key of a request never queued, older than the horizon")
        #expect(try world.state().processed.isEmpty)

        // Exactly one day after the completion: what finished before it goes, `done` stays.
        counts = try Self.pruneChecked(world, now: completion + day)
        #expect(counts == ["processed_keys_pruned": 0, "rentals_pruned": 2, "delivered_records_pruned": 0,
                           "intake_keys_pruned": 1, "kept_for_queued_items": 0], "\(counts)")
        var state = try world.state()
        #expect(Set(state.rentals.keys) == ["done", "live", "fill1", "fill2", "silent"], "silent was never notified: not finished")
        #expect(state.processed == ["allocate:rejected": completion + day, "cancel:rejected": completion + day,
                                    "allocate:cancelled": completion + day, "cancel:cancelled": completion + day], "tombstones")
        #expect(state.keys == ["0-k-live"])
        #expect(state.delivered.isSuperset(of: ["rejected-rejection", "cancelled-cancellation"]))

        counts = try Self.pruneChecked(world, now: completion + day + 1)
        #expect(counts["rentals_pruned"] == 1 && counts["processed_keys_pruned"] == 0, "\(counts)")
        #expect(try world.state().rentals["done"] == nil)

        // The horizon after each tombstone: the tombstone and its request's delivery records go.
        counts = try Self.pruneChecked(world, now: completion + day + 1 + horizon)
        #expect(counts["processed_keys_pruned"] == 4 && counts["delivered_records_pruned"] == 2 && counts["rentals_pruned"] == 0, "\(counts)")
        state = try world.state()
        #expect(state.processed == ["allocate:done": completion + day + 1, "cancel:done": completion + day + 1])
        #expect(state.delivered.contains("done-confirmation") && !state.delivered.contains("rejected-rejection"))
        counts = try Self.pruneChecked(world, now: completion + day + 2 + horizon)
        #expect(counts["processed_keys_pruned"] == 2 && counts["delivered_records_pruned"] == 1, "\(counts)")
        state = try world.state()
        #expect(state.processed.isEmpty)
        #expect(state.delivered == ["live-confirmation", "fill1-confirmation", "fill2-confirmation"])
        #expect(Set(state.rentals.keys) == ["live", "fill1", "fill2", "silent"])

        // Idempotent: nothing more, ever, for what is left.
        counts = try Self.pruneChecked(world, now: completion + 1000 * day)
        #expect(counts.values.allSatisfy { $0 == 0 }, "\(counts)")
    }

    @Test func withoutRetentionOnlyRedundantKeysGo() throws {
        let world = try PruningWorld(retentionDays: 0)
        let completion = try Self.history(world)
        let before = try world.state()
        let counts = try world.prune(now: completion + 100_000 * PruningWorld.day)
        #expect(counts["processed_keys_pruned"] == 8 && counts["rentals_pruned"] == 0 && counts["delivered_records_pruned"] == 0, "\(counts)")
        let after = try world.state()
        #expect(after.rentals == before.rentals && after.delivered == before.delivered && after.processed.isEmpty)
    }

    /// A dead-lettered command or notification keeps everything its request has; retried after
    /// the pruning, it decides nothing twice and notifies no one twice.
    @Test func deadLettersKeepTheirRequestsAndRetryDecidesNothingTwice() throws {
        let world = try PruningWorld()
        let completion = try Self.history(world)
        let done = world.request("done", "2000-01-01", "2000-02-01")
        let rejected = world.request("rejected", "2098-01-01", "2098-02-01")
        try world.deadLetter(canonicalJSON(AllocationCommand.allocate(done)), id: "done", in: world.allocation)
        try world.deadLetter(canonicalJSON(AllocationCommand.cancel(rejected, requestedAt: 5)), id: ItemID.generate().rawValue, in: world.allocation)
        let document = try world.allocator.store.read { db in try String.fetchOne(db, sql: "SELECT status FROM rental WHERE request_id = 'cancelled'") }
        let text = try #require(document)
        let status = try #require(RentalStatus(document: text))
        let notification = try #require(AllocationService.notification(of: status))
        try world.deadLetter(canonicalJSON(notification), id: notification.eventId, in: world.notifications)

        let later = completion + PruningWorld.day + 2 + world.horizon
        for now in [later, later + world.horizon + 1] {
            let counts = try world.prune(now: now)
            #expect(counts["kept_for_queued_items"] == 3, "\(counts)")
        }
        let state = try world.state()
        #expect(state.rentals["done"] == "completed" && state.rentals["rejected"] == "rejected" && state.rentals["cancelled"] == "cancelled")
        #expect(state.delivered.isSuperset(of: ["done-confirmation", "rejected-rejection", "cancelled-cancellation"]))

        let runs = world.hookRuns()
        for queue in [world.allocation, world.notifications] {
            for letter in try queue.deadLetters() { try queue.retryDeadLetter(letter.id) }
        }
        #expect(try world.decideQueued() == [.noChange, .noChange])
        #expect(try world.deliverAll() == 1)
        #expect(world.hookRuns() == runs, "no customer is notified twice")
        #expect(try world.state().rentals == state.rentals)
    }

    /// After a rental is pruned, its commands (a retried submit, a missed queue entry) are
    /// still decided once: the tombstones answer them.
    @Test func aCommandRedeliveredAfterThePruningIsStillIdempotent() throws {
        let world = try PruningWorld()
        let completion = try Self.history(world)
        #expect(try world.prune(now: completion + PruningWorld.day + 1)["rentals_pruned"] == 3)
        let done = world.request("done", "2000-01-01", "2000-02-01")
        let cancelled = world.request("cancelled", "2099-05-01", "2099-06-01")
        let runs = world.hookRuns()
        #expect(try world.decide([.allocate(done), .allocate(cancelled), .cancel(cancelled, requestedAt: 9),
                                  .allocate(world.request("rejected", "2098-01-01", "2098-02-01"))]) == [.noChange, .noChange, .noChange, .noChange])
        #expect(try world.state().rentals["cancelled"] == nil, "no tombstone rental is made by a late cancel")
        #expect(try world.deliverAll() == 0 && world.hookRuns() == runs)
        #expect(try world.allocator.store.assignments().map(\.request).sorted() == ["fill1", "fill2", "live"])
    }

    /// What compaction drops (here: the whole journal and index, as a compaction that dropped
    /// every finished request would leave them) neither `reconcile`'s restore nor its lost-item
    /// requeue nor a redelivered command brings back, before or after the store's pruning.
    @Test(arguments: [false, true])
    func reconcileDoesNotResurrectWhatRetentionDrops(prunedFirst: Bool) throws {
        let world = try PruningWorld()
        let completion = try Self.history(world)
        let now = completion + PruningWorld.day + 1
        if prunedFirst { _ = try world.prune(now: now) }
        for name in try FileManager.default.contentsOfDirectory(atPath: world.spool.path + "/journal") where name.hasSuffix(".log") || name.hasSuffix(".log.z") {
            try FileManager.default.removeItem(atPath: world.spool.path + "/journal/" + name)
        }
        for name in try FileManager.default.contentsOfDirectory(atPath: world.spool.path + "/index") where name.hasPrefix("status.sqlite") {
            try FileManager.default.removeItem(atPath: world.spool.path + "/index/" + name)
        }
        let service = try AllocationService(spool: world.spool, configuration: world.configuration, logger: Logger(label: "test"))
        let restored = try service.restoreIndexFromStore(spool: world.spool, now: Timestamp(milliseconds: now))
        #expect(Set(restored.restored) == ["live", "fill1", "fill2", "silent"], "\(restored.restored)")
        let runs = world.hookRuns()
        let lost = try service.requeueLostItems(spool: world.spool)
        #expect(lost.commands.isEmpty && lost.notifications == ["silent-rejection"], "only the lost notification of a request not finished: \(lost)")
        #expect(try world.deliverAll() == 1)
        // A late copy of a dropped request's command journals no `received` for it.
        try service.journalReceived([.allocate(world.request("done", "2000-01-01", "2000-02-01"))])
        _ = try service.index.catchUp(from: service.journal)
        #expect(try service.index.entity("done") == nil)
        if !prunedFirst { _ = try world.prune(now: now) }
        #expect(try service.requeueLostItems(spool: world.spool) == AllocationService.LostItems())
        #expect(try world.deliverAll() == 0)
        #expect(world.hookRuns() == runs.merging(["silent-rejection": 1]) { $0 + $1 })
        for id in ["done", "rejected", "cancelled"] { #expect(try service.index.entity(id) == nil, "\(id)") }
    }

    /// Pruning finished rentals changes no decision: two stores with the same history, one
    /// pruned, decide the same new requests identically (the units' free time is the same).
    @Test(arguments: 0..<4)
    func decisionsAfterPruningAreIdentical(seed: Int) throws {
        var random = SeededGenerator(seed: UInt64(seed) &+ 7)
        let units = (1...3).map { "U\($0)" }
        let worlds = [try PruningWorld(units: units, hook: false), try PruningWorld(units: units, hook: false)]
        let base = CalendarDay(iso: "2099-01-01")!
        func period(_ random: inout SeededGenerator) -> (String, String) {
            let start = base.adding(days: Int.random(in: 0..<120, using: &random))
            return ("\(start)", "\(start.adding(days: Int.random(in: 1..<40, using: &random)))")
        }
        var history: [AllocationCommand] = []
        for index in 0..<60 {
            let (from, to) = index % 3 == 0 ? ("2001-01-01", "2001-0\(index % 9 + 1)-28") : period(&random)
            let request = worlds[0].request("h\(index)", from, to)
            history.append(.allocate(request))
            if Int.random(in: 0..<4, using: &random) == 0 { history.append(.cancel(request, requestedAt: 1)) }
        }
        for world in worlds {
            for command in history { try world.decide([command]) }
            try world.deliverAll()
            try world.allocator.completeEndedRentals(today: CalendarDay(iso: "2026-01-01")!)
            try world.allocator.drainOutbox()
        }
        let pruned = try worlds[0].prune(now: Clock.nowMilliseconds() + 2 * PruningWorld.day)
        #expect(pruned["rentals_pruned"]! > 10, "\(pruned)")
        for index in 0..<80 {
            let (from, to) = period(&random)
            let command = AllocationCommand.allocate(worlds[0].request("n\(index)", from, to))
            let decisions = try worlds.map { try $0.decide([command]) }
            #expect(decisions[0] == decisions[1], "\(command)")
        }
        #expect(try worlds[0].allocator.store.assignments().map { "\($0)" } == worlds[1].allocator.store.assignments().map { "\($0)" })
    }

    /// On a spool where no allocator has run, the pruning creates nothing (a store or a record
    /// directory made by `spoolctl compact` run as root would have root's owner).
    @Test func aSpoolWithoutAStoreIsLeftAsItIs() throws {
        let (_, spool) = try makeSpool()
        var configuration = SystemConfiguration()
        configuration.retentionDays = 1
        let counts = try RetentionPruning.prune(spool: spool, configuration: configuration, now: .now(), dryRun: false,
                                                logger: Logger(label: "test")).counts
        #expect(counts.values.allSatisfy { $0 == 0 } && counts.count == 5, "\(counts)")
        for path in ["allocator/state.sqlite", "notifier", "intake", "queues", "index/status.sqlite"] {
            #expect(!FileManager.default.fileExists(atPath: "\(spool.path)/\(path)"), "\(path) was created")
        }
    }

    /// A symlink where a delivery record or a dead item belongs, planted by someone with write
    /// access to the spool, neither stops the pruning nor is followed: the record is kept, and the
    /// dead "item" keeps the request its name names.
    @Test func hostileFilesNeitherStopThePruningNorAreFollowed() throws {
        let world = try PruningWorld()
        let completion = try Self.history(world)
        let root = world.spool.path
        try FileManager.default.createSymbolicLink(atPath: "\(root)/notifier/delivered/ghost-confirmation", withDestinationPath: "/etc/passwd")
        try FileManager.default.createSymbolicLink(atPath: "\(root)/queues/allocation/dead/done.3", withDestinationPath: "/etc/passwd")
        let counts = try world.prune(now: completion + PruningWorld.day + 1)
        #expect(counts["rentals_pruned"] == 2 && counts["kept_for_queued_items"] == 1, "\(counts)")
        let state = try world.state()
        #expect(state.rentals["done"] != nil && state.delivered.contains("ghost-confirmation"))
        _ = try world.prune(now: completion + PruningWorld.day + 2 + world.horizon)
        #expect(try world.state().delivered.contains("ghost-confirmation"))
        #expect(FileManager.default.fileExists(atPath: "/etc/passwd"))
    }
}
