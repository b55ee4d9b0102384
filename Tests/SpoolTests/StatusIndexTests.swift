import Foundation
import Testing
@testable import Spool

@Suite struct StatusIndexTests {
    @Test func queriesByIdKeyAndState() throws {
        let (directory, _) = try makeSpool()
        let index = try StatusIndex(path: directory.sub("index.sqlite"))
        try index.apply([
            IndexEvent(entity: "r1", version: 1, state: "received", at: 10, keys: ["customer": "alice"], document: #"{"n":1}"#),
            IndexEvent(entity: "r2", version: 1, state: "received", at: 20, keys: ["customer": "alice"]),
            IndexEvent(entity: "r3", version: 1, state: "received", at: 30, keys: ["customer": "bob"]),
            IndexEvent(entity: "r1", version: 2, state: "assigned", at: 40, keys: ["customer": "alice"], document: #"{"n":2}"#),
        ])
        #expect(try index.entity("r1")?.state == "assigned")
        #expect(try index.entity("r1")?.document == #"{"n":2}"#)
        #expect(try index.entities(key: "customer", value: "alice").map(\.entity) == ["r1", "r2"])
        #expect(try index.entities(state: "received").map(\.entity) == ["r3", "r2"])
        #expect(try index.entity("nope") == nil)

        // A read-only connection sees the same, and cannot write.
        let reader = try StatusIndex(path: directory.sub("index.sqlite"), readOnly: true)
        #expect(try reader.entity("r1")?.version == 2)
        #expect(throws: (any Error).self) { try reader.apply([IndexEvent(entity: "x", version: 1, state: "s", at: 1)]) }
        #expect(throws: SpoolError.notFound("status index \(directory.sub("missing.sqlite"))")) {
            _ = try StatusIndex(path: directory.sub("missing.sqlite"), readOnly: true)
        }
    }

    @Test func olderVersionsNeverOverwriteNewer() throws {
        let (directory, _) = try makeSpool()
        let index = try StatusIndex(path: directory.sub("index.sqlite"))
        try index.apply([IndexEvent(entity: "r1", version: 3, state: "confirmed", at: 3, keys: ["k": "new"])])
        #expect(try index.apply([IndexEvent(entity: "r1", version: 2, state: "assigned", at: 2, keys: ["k": "old"])]) == 0)
        #expect(try index.entity("r1")?.state == "confirmed")
        #expect(try index.entities(key: "k", value: "old").isEmpty)
    }

    @Test func catchUpFollowsTheJournalAndResumes() throws {
        let (_, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        let index = try StatusIndex(path: try StatusIndex.defaultPath(in: spool))
        try journal.append([IndexEvent(entity: "a", version: 1, state: "received", at: 1).encoded(),
                            Array("not an index event".utf8)], durability: .durable)
        #expect(try index.catchUp(from: journal) == 2)
        #expect(try index.catchUp(from: journal) == 0, "resumes after what it consumed")
        try journal.append([IndexEvent(entity: "a", version: 2, state: "assigned", at: 2).encoded()], durability: .durable)
        #expect(try index.catchUp(from: journal) == 1)
        #expect(try index.entity("a")?.state == "assigned")
    }

    /// Property: for random event histories, journaled with duplicates and out of order across
    /// many small segments, the index fed incrementally (in random batch sizes, twice over)
    /// equals a rebuild from the journal alone, and both equal the model (per entity, the
    /// event with the highest version).
    @Test(arguments: 0..<12)
    func rebuildEqualsLiveIndex(seed: Int) throws {
        var random = SeededGenerator(seed: UInt64(seed) &* 7919 &+ 17)
        let (directory, spool) = try makeSpool()
        var configuration = Journal.Configuration()
        configuration.maxSegmentBytes = Int.random(in: 300...3000, using: &random)
        let journal = try Journal(spool: spool, configuration: configuration)

        var events: [IndexEvent] = []
        let states = ["received", "assigned", "confirmed", "rejected", "cancelled"]
        for entity in 0..<Int.random(in: 1...40, using: &random) {
            for version in 1...Int64.random(in: 1...6, using: &random) {
                events.append(IndexEvent(
                    entity: "e\(entity)", version: version, state: states.randomElement(using: &random)!,
                    at: Int64.random(in: 0...1_000_000, using: &random),
                    keys: ["customer": "c\(Int.random(in: 0..<5, using: &random))", "v": "\(version)"],
                    document: #"{"entity":"e\#(entity)","version":\#(version)}"#))
            }
        }
        var journaled = events + (0..<events.count / 3).map { _ in events.randomElement(using: &random)! }
        journaled.shuffle(using: &random)

        let live = try StatusIndex(path: directory.sub("live.sqlite"))
        var cursor = 0
        while cursor < journaled.count {
            let batch = Int.random(in: 1...25, using: &random)
            let slice = journaled[cursor..<min(cursor + batch, journaled.count)]
            try journal.append(slice.map { $0.encoded() }, durability: .buffered)
            cursor += batch
            if Bool.random(using: &random) { try live.catchUp(from: journal, batchSize: Int.random(in: 1...50, using: &random)) }
        }
        try live.catchUp(from: journal)
        // Replaying everything again changes nothing.
        try live.apply(try journal.records().compactMap { IndexEvent.decode($0.payload) })

        let rebuilt = try StatusIndex(path: directory.sub("rebuilt.sqlite"))
        try rebuilt.rebuild(from: journal)
        let liveRows = try live.dump()
        #expect(liveRows == (try rebuilt.dump()))

        var model: [String: IndexEvent] = [:]
        for event in events where (model[event.entity]?.version ?? 0) < event.version { model[event.entity] = event }
        let expected = model.values.sorted { $0.entity < $1.entity }.map {
            IndexedEntity(entity: $0.entity, version: $0.version, state: $0.state, updatedAt: $0.at, keys: $0.keys, document: $0.document)
        }
        #expect(liveRows == expected)
        for customer in 0..<5 {
            #expect(Set(try live.entities(key: "customer", value: "c\(customer)").map(\.entity))
                    == Set(expected.filter { $0.keys["customer"] == "c\(customer)" }.map(\.entity)))
        }
    }
}
