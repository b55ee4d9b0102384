import Foundation
import Rentals
import Testing
@testable import Spool

/// `spoolctl compact` with the real executables (issue 10): under running daemons and
/// concurrent submits, killed (SIGKILL) at random moments and run again; and retention, which
/// drops exactly what `retention_days` allows.
@Suite(.serialized) struct CompactionSystemTests {
    /// The index rebuilt from the journal (into a scratch file) and the live index caught up:
    /// their rows.
    static func indexes(_ system: SystemFixture) throws -> (live: [IndexedEntity], rebuilt: [IndexedEntity]) {
        let spool = try Spool(path: system.spool)
        let journal = try Journal(spool: spool)
        let live = try StatusIndex(spool: spool, journal: journal)
        try live.catchUp(from: journal)
        let scratch = try StatusIndex(path: system.directory.sub("rebuilt-\(UUID().uuidString).sqlite"))
        try scratch.rebuild(from: journal)
        return (try live.dump(), try scratch.dump())
    }

    /// Seals the live segment (as an appender does at 4 MiB or after an hour), from this process.
    static func seal(_ system: SystemFixture) throws {
        try Journal(spool: Spool(path: system.spool)).rotate()
    }

    @Test func compactionKilledAtRandomMomentsUnderLoadLosesNothing() throws {
        let system = try SystemFixture()
        try system.addUnits((0..<6).map { ("U\($0)", ["S", "M"][$0 % 2]) })
        try system.startBoth()
        // A submitter running beside the compactions: each printed id is acknowledged.
        let script = (0..<60).map { index in
            "\(productsDirectory())/spoolctl submit --customer c\(index % 7)@example.com --contact c@example.com --size \(["S", "M", "L"][index % 3]) --from 2099-0\(1 + index % 9)-01 --to 2099-0\(1 + index % 9)-20 --json || true"
        }.joined(separator: "\n")
        let submitter = try ChildProcess("/bin/bash", ["-c", script], environment: system.environment)
        var generator = SeededGenerator(seed: UInt64(Date().timeIntervalSince1970))
        var kills = 0, completed = 0, busy = 0, rounds = 0
        while submitter.process.isRunning || rounds < 12 {
            rounds += 1
            try Self.seal(system)
            // Two at once now and then: one waits for nobody, it is refused (75).
            let compactions = try (0..<(rounds % 4 == 0 ? 2 : 1)).map { _ in
                try ChildProcess("spoolctl", ["compact", "--json"], environment: system.environment)
            }
            let delay = UInt32.random(in: 0...120_000, using: &generator)
            usleep(delay)  // the random moment of the kill (not a wait for a condition)
            for compaction in compactions {
                if rounds % 3 != 0, compaction.process.isRunning {
                    kill(compaction.process.processIdentifier, SIGKILL)
                    kills += 1
                }
                let result = compaction.finish()
                if result.status == 0 { completed += 1 } else if result.status == 75 { busy += 1 } else {
                    #expect(result.status == 9 || compaction.process.terminationReason == .uncaughtSignal,
                            "compact exited \(result.status): \(result.errors)")
                }
            }
            // Readers answer between compactions: the status of an early request.
            if rounds == 6 {
                let listed = try system.ctl("list", "--json")
                #expect(listed.status == 0, "\(listed.errors)")
            }
        }
        let submitted = submitter.finish()
        // Each acknowledged submit printed `"id" : "<id>"` (pretty JSON).
        let acknowledged = submitted.output.split(separator: "\n").compactMap { line -> String? in
            let parts = line.split(separator: "\"")
            guard parts.count >= 4, parts[1] == "id" else { return nil }
            return String(parts[3])
        }
        #expect(acknowledged.count > 20, "\(submitted.errors)")
        try Self.seal(system)
        let final = try system.ctl("compact", "--json")
        #expect(final.status == 0, "\(final.errors)")
        // Every acknowledged request answers, and reaches a decision.
        for id in acknowledged {
            let status = try system.ctl("status", id, "--json")
            #expect(status.status == 0, "\(id): \(status.errors)")
        }
        #expect(system.eventually(30) {
            acknowledged.allSatisfy { id in (try? system.status(id)).map { $0.state != .received } ?? false }
        })
        system.stop("spool-allocator")
        system.stop("spool-notifier")
        let (live, rebuilt) = try Self.indexes(system)
        #expect(live == rebuilt)
        #expect(Set(live.map(\.entity)).isSuperset(of: acknowledged))
        print("COMPACTION-KILL rounds=\(rounds) kills=\(kills) completed=\(completed) busy=\(busy) acknowledged=\(acknowledged.count)")
        #expect(kills > 3 && completed > 2, "kills \(kills), completed \(completed), busy \(busy)")
    }

    /// Takes `count` notifications off the queue (waiting for them to be published), acknowledged
    /// as a notifier does once it delivered them.
    static func acknowledgeNotifications(_ system: SystemFixture, count: Int) throws {
        let queue = try Spool(path: system.spool).queue(.notifications, retry: RetryPolicy(maxAttempts: 8))
        var taken = 0
        #expect(try system.eventually {
            while let item = try queue.claimNext(lease: .seconds(60)) {
                try queue.acknowledge(item)
                taken += 1
            }
            return taken >= count
        }, "\(taken) of \(count) notifications")
    }

    /// A request in `state`, last changed `age` ago, notified or not: journaled as its status
    /// event (the version after every real one), from a request submitted for real.
    static func age(_ system: SystemFixture, _ id: String, to state: RentalState, age: Int64, notified: Bool, now: Int64) throws {
        var status = try system.status(id)
        status.state = state
        status.updatedAt = Timestamp(milliseconds: now - age)
        status.notifiedAt = notified ? Timestamp(milliseconds: now - age) : nil
        status.version = RentalStatus.version(step: 9)
        try Journal(spool: Spool(path: system.spool)).append([status.indexEvent().encoded()], durability: .durable)
    }

    @Test func retentionDropsOnlyWhatTheSettingAllows() throws {
        let days: Int64 = 3
        let day: Int64 = 86_400_000
        let system = try SystemFixture(settings: ["retention_days": "\(days)"])
        let now = Clock.nowMilliseconds()
        // (state, age, notified, dropped?)
        let cases: [(RentalState, Int64, Bool, Bool)] = [
            (.completed, days * day + 60_000, false, true),       // just over N days
            (.completed, days * day - 60_000, false, false),      // just under
            (.rejected, 30 * day, true, true),
            (.rejected, 30 * day, false, false),                  // rejected, customer not told yet
            (.cancelled, 30 * day, true, true),
            (.cancelled, 30 * day, false, false),
            (.received, 30 * day, false, false),                  // unfinished: never
            (.assigned, 30 * day, true, false),
            (.confirmed, 30 * day, true, false),
        ]
        // Decided for real (no units: rejected), so that no queue item answers for them.
        try system.start("spool-allocator")
        var ids: [String] = []
        for (index, _) in cases.enumerated() {
            ids.append(try system.submit(customer: "r\(index)@example.com", size: "S", from: "2099-01-01", to: "2099-02-01"))
        }
        for id in ids { _ = try system.waitFor(id, .rejected) }
        // Their rejections taken off the queue, as a notifier would: a request a queue entry
        // mentions is never dropped (`CompactionDeadLetterTests`).
        try Self.acknowledgeNotifications(system, count: ids.count)
        for (index, item) in cases.enumerated() { try Self.age(system, ids[index], to: item.0, age: item.1, notified: item.2, now: now) }
        // One more finished, old request whose last event is still in the live segment: kept
        // until a later compaction (only sealed segments are rewritten).
        try Self.seal(system)
        let late = try system.submit(customer: "late@example.com", size: "S", from: "2099-01-01", to: "2099-02-01")
        _ = try system.waitFor(late, .rejected)
        try Self.acknowledgeNotifications(system, count: 1)
        try Self.age(system, late, to: .completed, age: 30 * day, notified: true, now: now)

        let dry = try system.ctl("compact", "--dry-run", "--json")
        #expect(dry.status == 0, "\(dry.errors)")
        for (index, item) in cases.enumerated() where item.3 {
            #expect(try system.ctl("status", ids[index]).status == 0, "a dry run drops nothing")
        }
        let result = try system.ctl("compact", "--json")
        #expect(result.status == 0, "\(result.errors)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        #expect(summary["requests_dropped"] as? Int == cases.filter(\.3).count)
        #expect(summary["index_rebuilt"] as? Bool == true)
        for (index, item) in cases.enumerated() {
            let status = try system.ctl("status", ids[index], "--json")
            #expect(status.status == (item.3 ? 66 : 0), "\(item.0) aged \(item.1 / 60_000) min, notified \(item.2): \(status.status)")
        }
        #expect(try system.ctl("status", late).status == 0)
        let (live, rebuilt) = try Self.indexes(system)
        #expect(live == rebuilt)

        // The archive: readable with Python's zlib, holding exactly the dropped requests.
        let archive = try #require(summary["archive"] as? String)
        let python = try ChildProcess("/usr/bin/python3", ["-c", """
            import json, sys, zlib
            lines = zlib.decompress(open(sys.argv[1], 'rb').read()).decode().splitlines()
            assert lines[0] == 'spool-archive 1 %d' % (len(lines) - 1), lines[0]
            for line in lines[1:]: print(json.loads(line)['entity'])
            """, "\(system.spool)/\(archive)"])
        let printed = python.finish()
        #expect(printed.status == 0, "\(printed.errors)")
        #expect(Set(printed.output.split(separator: "\n").map(String.init)) == Set(cases.indices.filter { cases[$0].3 }.map { ids[$0] }))

        // Idempotent: a second run drops nothing more, writes no second archive, and the late
        // request goes once its segment is sealed.
        let again = try system.ctl("compact", "--json")
        #expect(again.status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(system.spool)/archive").count == 1)
        try Self.seal(system)
        #expect(try system.ctl("compact").status == 0)
        #expect(try system.ctl("status", late).status == 66)
    }

    @Test func retentionZeroKeepsEverything() throws {
        let system = try SystemFixture()
        try system.start("spool-allocator")
        let id = try system.submit(size: "S", from: "2099-01-01", to: "2099-02-01")
        _ = try system.waitFor(id, .rejected)
        try Self.age(system, id, to: .completed, age: 3650 * 86_400_000, notified: true, now: Clock.nowMilliseconds())
        try Self.seal(system)
        let result = try system.ctl("compact", "--json")
        #expect(result.status == 0, "\(result.errors)")
        #expect(try system.ctl("status", id).status == 0)
        #expect(!FileManager.default.fileExists(atPath: "\(system.spool)/archive"))
    }
}
