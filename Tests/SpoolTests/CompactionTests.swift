import Foundation
import Testing
@testable import Spool

/// `journal.compact(...)`, waiting (at most 5 s) while `journal/compact.lock` is busy: a child
/// process that another test is spawning holds a copy of every descriptor for a moment between
/// its fork and its exec, the lock's too.
func compactWaiting(_ journal: Journal, pieceBytes: Int = 4 << 20, mayDrop: (IndexEvent) -> Bool,
                    archive: Journal.ArchiveWriter?) throws -> (JournalCompactionReport, [JournalDamage]) {
    let deadline = ContinuousClock.now + .seconds(5)
    while true {
        do { return try journal.compact(pieceBytes: pieceBytes, mayDrop: mayDrop, archive: archive) } catch is CompactionBusy where ContinuousClock.now < deadline {
            usleep(10_000)
        }
    }
}

/// Journal compaction (issue 10; docs/spool-format.md, "Compaction"): whatever the events, their
/// versions and ties, their spread over segments and the readers' positions, a compacted
/// journal projects to the same index as before, minus exactly the entities retention drops.
@Suite struct CompactionTests {
    /// A journal with small segments, events of `entities` entities (versions 1...4, equal versions
    /// with different documents), rotated at random; returns the journal and every event written.
    static func randomJournal(_ spool: Spool, seed: UInt64, entities: Int, events count: Int) throws -> (Journal, [IndexEvent]) {
        var generator = SeededGenerator(seed: seed)
        var configuration = Journal.Configuration()
        configuration.maxSegmentBytes = Int.random(in: 400...4000, using: &generator)
        let journal = try Journal(spool: spool, configuration: configuration)
        var events: [IndexEvent] = []
        for _ in 0..<count {
            let entity = "e\(Int.random(in: 0..<entities, using: &generator))"
            let version = Int64.random(in: 1...4, using: &generator)
            let done = Bool.random(using: &generator)
            let document = "{\"v\":\(version),\"d\":\"\(["z", "é", "a"].randomElement(using: &generator)!)\",\"done\":\(done)}"
            let event = IndexEvent(entity: entity, version: version, state: done ? "done" : "open", at: Int64(events.count),
                                   keys: ["k": "\(entity.count % 3)"], document: document)
            events.append(event)
            // Now and then a record the index does not project (kept as it is).
            let payloads = Int.random(in: 0..<25, using: &generator) == 0 ? [event.encoded(), Array("other-\(events.count)".utf8)] : [event.encoded()]
            try journal.append(payloads, durability: .buffered)
            if Int.random(in: 0..<40, using: &generator) == 0 { try journal.rotate() }
        }
        try journal.sync()
        return (journal, events)
    }

    static func sorted(_ entities: [String: IndexedEntity]) -> [IndexedEntity] {
        entities.values.sorted { $0.entity.utf8.lexicographicallyPrecedes($1.entity.utf8) }
    }

    static func entities(in journal: Journal) throws -> (sealed: Set<String>, live: Set<String>) {
        var sealed = Set<String>(), live = Set<String>()
        let compactable = Set(try journal.compactableSegments())
        for record in try journal.records() {
            guard let event = IndexEvent.decode(record.payload) else { continue }
            if compactable.contains(record.position.segment) { sealed.insert(event.entity) } else { live.insert(event.entity) }
        }
        return (sealed, live)
    }

    static let dropDone: @Sendable (IndexEvent) -> Bool = { $0.state == "done" && $0.entity.hasSuffix("7") == false }

    /// The property: for random journals, compaction (with and without retention) keeps the
    /// projection (the rebuild equals the scan before, minus the dropped entities, which are
    /// exactly those whose latest event retention allows and that have no event in the live
    /// segment); an index caught up to random positions before compaction catches up after it to
    /// the same rows as a rebuild; other records survive; a second compaction changes nothing.
    @Test(arguments: 1...12) func compactionKeepsTheProjection(seed: Int) throws {
        let (directory, spool) = try makeSpool()
        let (journal, _) = try Self.randomJournal(spool, seed: UInt64(seed), entities: 40, events: 600)
        let before = try StatusIndex.scan(journal)
        let others = try journal.records().filter { IndexEvent.decode($0.payload) == nil }.map(\.payload)
        let (_, live) = try Self.entities(in: journal)
        let retention = seed % 2 == 0
        let expectedDropped = Set(before.values.filter { row in
            retention && !live.contains(row.entity)
                && Self.dropDone(IndexEvent(entity: row.entity, version: row.version, state: row.state, at: row.updatedAt,
                                            keys: row.keys, document: row.document))
        }.map(\.entity))

        // A live index stopped at a position inside some segment (as a daemon's catch-up leaves it).
        let tail = try StatusIndex(path: directory.sub("tail.sqlite"))
        var generator = SeededGenerator(seed: UInt64(seed) &+ 77)
        let records = try journal.records()
        let stop = records[Int.random(in: 0..<records.count, using: &generator)]
        try tail.apply(try journal.records().prefix { $0.position < stop.position }.compactMap { IndexEvent.decode($0.payload) },
                       consumedThrough: stop.position)

        var archived: [IndexEvent] = []
        let (report, damage) = try compactWaiting(journal, pieceBytes: [300, 2000, 1 << 20][seed % 3], mayDrop: retention ? Self.dropDone : { _ in false },
                                                   archive: { events in archived += events; return "archive/test" })
        #expect(damage.isEmpty)
        #expect(report.entitiesDropped == expectedDropped.count)
        #expect(Set(archived.map(\.entity)) == expectedDropped)
        var expected = before
        for entity in expectedDropped { expected[entity] = nil }
        let after = try StatusIndex.scan(journal)
        #expect(Self.sorted(after) == Self.sorted(expected))
        #expect(try journal.records().filter { IndexEvent.decode($0.payload) == nil && !CompactionMarker.isMarker($0.payload) }.map(\.payload) == others)
        for event in archived { #expect(before[event.entity] == IndexedEntity(event)) }

        let rebuilt = try StatusIndex(path: directory.sub("rebuilt.sqlite"))
        try rebuilt.rebuild(from: journal)
        #expect(try rebuilt.dump() == Self.sorted(expected))
        if !retention {
            // Resuming from a position taken before compaction misses nothing.
            try tail.catchUp(from: journal, batchSize: 7)
            #expect(try tail.dump() == Self.sorted(before))
        }
        // Idempotent: nothing left to do.
        let (again, _) = try compactWaiting(journal, pieceBytes: [300, 2000, 1 << 20][seed % 3], mayDrop: retention ? Self.dropDone : { _ in false },
                                             archive: { _ in Issue.record("nothing to archive"); return "" })
        #expect(again.unchanged)
        #expect(again.entitiesDropped == 0)
        #expect(Self.sorted(try StatusIndex.scan(journal)) == Self.sorted(expected))
    }

    /// A failure at any file operation of a compaction (a crash's effect on a process: it stops
    /// there) leaves a journal whose projection is the old one, with each dropped entity either
    /// whole or gone, never an older state; a rerun completes the compaction.
    @Test func aFailureAtEveryStepLeavesNothingHalfVisible() throws {
        let (_, reference) = try makeSpool()
        let (referenceJournal, _) = try Self.randomJournal(reference, seed: 99, entities: 30, events: 400)
        let (probe, _) = try referenceJournal.compact(pieceBytes: 600, mayDrop: Self.dropDone, archive: { _ in "" })
        #expect(probe.entitiesDropped > 0)
        var step = 0
        for call in [SystemCall.open, .write, .fsync, .rename, .unlink, .list, .read] {
            for occurrence in 1...30 {
                let injector = FaultInjector()
                let scratch = PowerLossTests.scratch("compaction-fault")
                defer { PowerLossTests.remove(scratch) }
                var configuration = Spool.Configuration()
                configuration.calls = FileSystemCalls.live.injecting(injector)
                let spool = try Spool(path: scratch + "/spool", create: true, configuration: configuration)
                let (journal, _) = try Self.randomJournal(spool, seed: 99, entities: 30, events: 400)
                let before = try StatusIndex.scan(journal)
                injector.arm(failing: call, occurrence: occurrence, errno: EIO)
                var archived: [IndexEvent] = []
                _ = try? compactWaiting(journal, pieceBytes: 600, mayDrop: Self.dropDone, archive: { events in archived = events; return "" })
                guard injector.disarm().fired else { break }
                step += 1
                let middle = try StatusIndex.scan(journal)
                for (entity, row) in before {
                    if let now = middle[entity] {
                        #expect(now == row, "\(call) #\(occurrence): \(entity) changed")
                    } else {
                        #expect(archived.contains { $0.entity == entity }, "\(call) #\(occurrence): \(entity) gone unarchived")
                    }
                }
                #expect(middle.count <= before.count)
                do { _ = try compactWaiting(journal, pieceBytes: 600, mayDrop: Self.dropDone, archive: { _ in "" }) } catch {
                    Issue.record("\(call) #\(occurrence): the rerun failed: \(error)")
                    continue
                }
                let after = try StatusIndex.scan(journal)
                for (entity, row) in after { #expect(before[entity] == row) }
                #expect(after.count == before.count - probe.entitiesDropped, "\(call) #\(occurrence)")
            }
        }
        #expect(step > 30)
    }

    /// A second compaction while one runs is refused at once (`spoolctl compact` exits 75).
    @Test func aSecondCompactionIsRefused() throws {
        let (directory, spool) = try makeSpool()
        let (journal, _) = try Self.randomJournal(spool, seed: 5, entities: 5, events: 50)
        let fd = open(directory.sub("spool/journal/compact.lock"), O_RDWR | O_CREAT, 0o660)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX) == 0)
        #expect(throws: CompactionBusy.self) { try journal.compact(mayDrop: { _ in false }, archive: nil) }
        flock(fd, LOCK_UN)
        _ = try compactWaiting(journal, mayDrop: { _ in false }, archive: nil)
    }

    /// Damage is never cut: the damaged segment and those below it stay as they are; the rest is
    /// compacted, and no entity with an event in the kept part is dropped.
    @Test func damageIsKeptAndReported() throws {
        let (directory, spool) = try makeSpool()
        let (journal, _) = try Self.randomJournal(spool, seed: 17, entities: 20, events: 500)
        let sealed = try journal.compactableSegments()
        #expect(sealed.count > 4)
        let victim = sealed[sealed.count / 2]
        // Flip a byte inside the victim's records (re-sealed with the damage).
        let name = JournalSegment.sealedName(victim)
        var bytes = Zlib.inflatePrefix(try Array(Data(contentsOf: URL(fileURLWithPath: directory.sub("spool/journal/\(name)")))), limit: 1 << 30).output
        bytes[bytes.count / 2] ^= 0x55
        try Data(try Zlib.compress(bytes)).write(to: URL(fileURLWithPath: directory.sub("spool/journal/\(name)")))
        let before = try StatusIndex.scan(journal)
        let (report, damage) = try compactWaiting(journal, pieceBytes: 500, mayDrop: Self.dropDone, archive: { _ in "" })
        #expect(damage.map(\.sequence) == [victim])
        #expect(report.keptFromDamagedSegment == victim)
        #expect(FileManager.default.fileExists(atPath: directory.sub("spool/journal/\(name)")))
        let kept = Set(try journal.records().filter { $0.position.segment <= victim }.compactMap { IndexEvent.decode($0.payload)?.entity })
        let after = try StatusIndex.scan(journal)
        for entity in kept { #expect(after[entity] == before[entity]) }
    }

    /// A reader whose position lies inside a segment that compaction rewrote reads that segment
    /// again whole (its first record is the compaction marker) and misses nothing.
    @Test func aPositionInsideARewrittenSegmentIsReadAgain() throws {
        let (_, spool) = try makeSpool()
        var configuration = Journal.Configuration()
        configuration.maxSegmentBytes = 1 << 20
        let journal = try Journal(spool: spool, configuration: configuration)
        for index in 0..<50 {
            try journal.append([IndexEvent(entity: "e\(index % 10)", version: Int64(index), state: "s", at: 0).encoded()], durability: .buffered)
        }
        let records = try journal.records()
        let position = records[45].position  // late in segment 1: the latest of e0…e4 lie before it
        try journal.rotate()
        try journal.append([IndexEvent(entity: "x", version: 1, state: "s", at: 0).encoded()], durability: .durable)
        _ = try compactWaiting(journal, mayDrop: { _ in false }, archive: nil)
        var seen = Set<String>()
        try journal.read(from: position) { record in if let event = IndexEvent.decode(record.payload) { seen.insert(event.entity) } }
        #expect(seen == Set((0..<10).map { "e\($0)" } + ["x"]))
    }
}
