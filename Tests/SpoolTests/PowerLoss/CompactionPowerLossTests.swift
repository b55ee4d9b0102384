import Foundation
import Testing
@testable import Spool

/// Power loss during compaction (issue 10): every file operation of a compaction with retention
/// and archive is recorded (``RecordingFileSystem``), and at every cut point the crash states
/// ``CrashModel`` allows (unsynced renames and removals lost or kept, unsynced data torn or
/// zero-filled) are materialised and checked:
///
/// - the journal reads without damage, and each entity's latest event is the one written before
///   compaction began, or (for an entity retention drops) it is gone and a whole, readable
///   archive under `archive/` holds it;
/// - a rerun of compaction on that state completes it: exactly the droppable entities are gone,
///   every other one is as before, and each dropped one is in an archive.
///
/// `TORTURE_MODE=full` checks more states per cut.
@Suite struct CompactionPowerLossTests {
    static let mayDrop: @Sendable (IndexEvent) -> Bool = { $0.state == "done" }

    @Test func compactionSurvivesEveryCrashState() throws {
        let full = ProcessInfo.processInfo.environment["TORTURE_MODE"] == "full"
        let statesPerCut = full ? 16 : 3
        let scratch = PowerLossTests.scratch("compaction-powerloss")
        defer { PowerLossTests.remove(scratch) }
        let world = "\(scratch)/world"
        try FileManager.default.createDirectory(atPath: world, withIntermediateDirectories: false)
        let recorder = RecordingFileSystem(world: world, databases: [])
        var configuration = Spool.Configuration()
        configuration.calls = recorder.calls
        let spool = try Spool(path: "\(world)/spool", create: true, configuration: configuration)
        var journalConfiguration = Journal.Configuration()
        journalConfiguration.maxSegmentBytes = 900
        let journal = try Journal(spool: spool, configuration: journalConfiguration)
        // 40 entities, then a second event for half of them: the others' latest events lie in
        // the first segments, which the single output segment (pieceBytes) does not replace.
        for index in 0..<100 where index < 40 || index % 2 == 0 {
            let entity = "r\(index % 40)"
            let step = Int64(index / 40 + 1)
            let state = index % 3 != 0 ? "done" : "open"
            try journal.append([IndexEvent(entity: entity, version: step, state: state, at: Int64(index),
                                           document: "{\"step\":\(step),\"state\":\"\(state)\"}").encoded()], durability: .durable)
        }
        let before = try StatusIndex.scan(journal)
        let (_, liveEntities) = try CompactionTests.entities(in: journal)
        let droppable = Set(before.values.filter { row in
            !liveEntities.contains(row.entity) && Self.mayDrop(IndexEvent(entity: row.entity, version: row.version, state: row.state, at: row.updatedAt))
        }.map(\.entity))
        #expect(!droppable.isEmpty && droppable.count < before.count)
        let start = recorder.events.count
        let (report, _) = try compactWaiting(journal, pieceBytes: 1 << 20, mayDrop: Self.mayDrop,
                                              archive: { events in try RetentionArchive(spool: spool).write(events) })
        #expect(report.entitiesDropped == droppable.count)
        let events = recorder.events

        var model = CrashModel()
        for event in events[..<start] { model.apply(event) }
        var states = 0, violations: [String] = []
        for position in start...events.count {
            if position > start { model.apply(events[position - 1]) }
            for choice in model.choices(limit: statesPerCut, seed: UInt64(position)).choices {
                states += 1
                let root = "\(scratch)/state-\(states)"
                try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
                try model.materialise(model.layout(choice), snapshot: nil, at: root)
                let found = Self.check(root: root, before: before, droppable: droppable)
                if found.isEmpty { try? FileManager.default.removeItem(atPath: root) } else {
                    violations.append("cut \(position - start)/\(events.count - start) state \(root): \(found.joined(separator: "; "))")
                }
            }
        }
        print("COMPACTION-POWERLOSS cuts=\(events.count - start + 1) states=\(states) violations=\(violations.count)")
        for violation in violations.prefix(10) { Issue.record("\(violation)") }
        #expect(states > 40)
    }

    /// What is wrong with the crash state at `root` (empty: nothing).
    static func check(root: String, before: [String: IndexedEntity], droppable: Set<String>) -> [String] {
        var problems: [String] = []
        do {
            let spool = try Spool(path: "\(root)/spool")
            let journal = try Journal(spool: spool)
            let archived = try archivedEntities(root)
            func verify(_ stage: String, complete: Bool) throws {
                var damaged = false
                let now = try StatusIndex.scan(journal)
                if try !journal.read(from: .start, { _ in }).damage.isEmpty { damaged = true }
                if damaged { problems.append("\(stage): journal damaged") }
                for (entity, row) in before {
                    if let found = now[entity] {
                        if found != row { problems.append("\(stage): \(entity) is \(found.state) v\(found.version), was v\(row.version)") }
                        if complete, droppable.contains(entity) { problems.append("\(stage): \(entity) not dropped") }
                    } else if !droppable.contains(entity) {
                        problems.append("\(stage): \(entity) lost")
                    } else if !(try archivedEntities(root)).contains(entity) {
                        problems.append("\(stage): \(entity) dropped without an archive")
                    }
                }
            }
            _ = archived
            try verify("after the crash", complete: false)
            _ = try compactWaiting(journal, pieceBytes: 1 << 20, mayDrop: mayDrop,
                                    archive: { events in try RetentionArchive(spool: spool).write(events) })
            try verify("after a rerun", complete: true)
        } catch {
            problems.append("error: \(error)")
        }
        return problems
    }

    /// Entities in the whole archive files under `archive/` (a damaged file counts for nothing).
    static func archivedEntities(_ root: String) throws -> Set<String> {
        var entities = Set<String>()
        let directory = "\(root)/spool/archive"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".jsonl.z") {
            let compressed = try Array(Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)")))
            let inflated = Zlib.inflatePrefix(compressed, limit: 1 << 30)
            guard inflated.failure == nil else { continue }
            let lines = String(decoding: inflated.output, as: UTF8.self).split(separator: "\n")
            guard let header = lines.first, header.hasPrefix("spool-archive 1 "),
                  Int(header.dropFirst("spool-archive 1 ".count)) == lines.count - 1 else { continue }
            for line in lines.dropFirst() { if let event = IndexEvent.decode(Array(line.utf8)) { entities.insert(event.entity) } }
        }
        return entities
    }
}
