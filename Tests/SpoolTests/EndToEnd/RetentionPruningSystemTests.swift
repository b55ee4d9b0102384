import Foundation
import GRDB
import Logging
import Rentals
import Synchronization
import Testing
@testable import Allocator
@testable import Spool

/// The retention pruning run again and again beside the real `spool-allocator` and
/// `spool-notifier` under a stream of submits and cancels.
@Suite(.serialized) struct RetentionPruningSystemTests {
    /// Every request is decided once and its customer notified once per message, whatever the
    /// pruning removes meanwhile; at the end every finished request is pruned, with tombstones.
    @Test func pruningBesideRunningDaemonsLosesNothingAndDoublesNothing() throws {
        let scratch = TemporaryDirectory("prune-e2e")
        let script = scratch.sub("hook.sh"), log = scratch.sub("hook.log")
        try Data("#!/bin/sh\ncat >/dev/null\necho \"$SPOOL_EVENT_ID\" >> '\(log)'\n".utf8).write(to: URL(fileURLWithPath: script))
        chmod(script, 0o755)
        let system = try SystemFixture(settings: ["retention_days": "1", "notify_hook": script])
        try system.addUnits([("P1", "S"), ("P2", "S")])
        try system.startBoth()
        var configuration = SystemConfiguration()
        configuration.spoolRoot = system.spool
        configuration.retentionDays = 1

        // The pruner: runs until told to stop, with "now" two days ahead, so that every
        // finished request is past retention at once.
        let stop = Atomic<Bool>(false)
        let totals = Mutex<(runs: Int, counts: [String: Int], errors: [String])>((0, [:], []))
        let finished = DispatchSemaphore(value: 0)
        let spoolPath = system.spool
        let settings = configuration
        Thread.detachNewThread {
            defer { finished.signal() }
            while !stop.load(ordering: .relaxed) {
                do {
                    let spool = try Spool(path: spoolPath)
                    let report = try RetentionPruning.prune(spool: spool, configuration: settings,
                                                            now: Timestamp(milliseconds: Clock.nowMilliseconds() + 2 * PruningWorld.day),
                                                            dryRun: false, logger: Logger(label: "pruner"))
                    totals.withLock { totals in
                        totals.runs += 1
                        totals.counts.merge(report.counts) { $0 + $1 }
                    }
                } catch {
                    totals.withLock { $0.errors.append("\(error)") }
                }
            }
        }

        var ids: [String] = []
        for round in 0..<4 {
            let from = "2099-0\(round + 1)-01", to = "2099-0\(round + 1)-20"
            let batch = try (0..<6).map { index in try system.submit(customer: "r\(round)c\(index)", size: "S", from: from, to: to) }
            ids += batch
            for id in batch {
                var decided: RentalStatus?
                #expect(system.eventually(30) { decided = try? system.status(id); return decided.map { $0.state != .received } ?? false })
                if let state = decided?.state, state == .assigned || state == .confirmed {
                    #expect(try system.ctl("cancel", id).status == 0)
                }
            }
        }
        // Every request ends rejected or cancelled, notified.
        for id in ids {
            #expect(system.eventually(30) {
                guard let status = try? system.status(id) else { return false }
                return (status.state == .rejected || status.state == .cancelled) && status.notifiedAt != nil
            }, "\(id)")
        }
        // Let the pruner see the final states, then stop it.
        let seen = totals.withLock { $0.runs }
        #expect(system.eventually(30) { totals.withLock { $0.runs } >= seen + 2 })
        stop.store(true, ordering: .relaxed)
        finished.wait()
        let spool = try Spool(path: system.spool)
        let last = try RetentionPruning.prune(spool: spool, configuration: configuration,
                                              now: Timestamp(milliseconds: Clock.nowMilliseconds() + 2 * PruningWorld.day),
                                              dryRun: false, logger: Logger(label: "pruner"))
        let (runs, counts, errors) = totals.withLock { ($0.runs, $0.counts, $0.errors) }
        #expect(errors.isEmpty, "\(errors)")
        #expect(runs > 3)
        #expect((counts["rentals_pruned"] ?? 0) + (last.counts["rentals_pruned"] ?? 0) == ids.count, "\(counts) \(last.counts)")

        // Nothing decided twice, no one notified twice, every request known to the store.
        let events = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").map(String.init) ?? []
        #expect(events.count == Set(events).count, "an event delivered twice: \(events.sorted())")
        for id in ids {
            let finals = events.filter { $0 == "\(id)-rejection" || $0 == "\(id)-cancellation" }
            #expect(finals.count == 1, "\(id): \(events.filter { $0.hasPrefix(id) })")
        }
        let store = try AllocatorStore(spool: spool)
        let (rentals, tombstones) = try store.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM rental")!, Set(try String.fetchAll(db, sql: "SELECT key FROM processed")))
        }
        #expect(rentals == 0)
        #expect(tombstones == Set(ids.flatMap { ["allocate:\($0)", "cancel:\($0)"] }))
        #expect(system.stop("spool-allocator") == 0)
        #expect(system.stop("spool-notifier") == 0)
    }

    /// A submit retried with the idempotency key of a request that compaction dropped (journal
    /// and index no longer have it; the key not pruned yet) queues the recorded request again,
    /// which the allocator finds decided: nothing is decided twice and no `received` row brings
    /// the dropped request back (before, `spoolctl` journaled one: a request `received` for ever).
    @Test func aRetriedSubmitOfADroppedRequestDoesNotBringItBack() throws {
        let system = try SystemFixture(settings: ["retention_days": "1"])
        try system.startBoth()
        let arguments = ["submit", "--customer", "k@example.com", "--contact", "k@example.com", "--size", "S",
                         "--from", "2099-03-01", "--to", "2099-03-10", "--idempotency-key", "order-1", "--json"]
        let first = try system.ctl(arguments)
        #expect(first.status == 0, "\(first.errors)")
        let id = try #require((try JSONSerialization.jsonObject(with: Data(first.output.utf8)) as? [String: Any])?["id"] as? String)
        #expect(system.eventually(30) { (try? system.status(id))?.notifiedAt != nil }, "rejected (no units) and notified")
        #expect(system.stop("spool-allocator") == 0 && system.stop("spool-notifier") == 0)
        for directory in ["journal", "index"] {
            for name in try FileManager.default.contentsOfDirectory(atPath: "\(system.spool)/\(directory)")
            where name.hasPrefix("0") || name.hasPrefix("status.sqlite") {
                try FileManager.default.removeItem(atPath: "\(system.spool)/\(directory)/\(name)")
            }
        }
        let again = try system.ctl(arguments)
        #expect(again.status == 0 && again.output.contains(id), "\(again.output) \(again.errors)")
        try system.start("spool-allocator")
        let allocation = try Spool(path: system.spool).queue(.allocation)
        #expect(system.eventually(30) { (try? allocation.counts()).map { $0.ready + $0.active + $0.deferred == 0 } ?? false })
        #expect(system.stop("spool-allocator") == 0)
        #expect(try system.ctl("status", id).status == 66, "the dropped request stays dropped")
        let store = try AllocatorStore(spool: Spool(path: system.spool))
        #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM rental") } == 1)
    }
}
