import Foundation
import Testing
@testable import Spool

/// An attack on the fast index rebuild (issue 9, engineer `adversary`): entity ids are compared
/// as bytes everywhere the index keeps them (SQLite's `TEXT PRIMARY KEY`), but Swift's `String`
/// equality is canonical equivalence, so "café" spelled with U+00E9 and with "e" + U+0301 are one
/// `String` and two rows. The rebuild's window of entities (a Swift dictionary) must keep them
/// apart, as catching up event by event does, and the status miss path must not answer for one
/// with the other's row.
@Suite struct IndexEntityIdentityTests {
    private let composed = "caf\u{E9}"
    private let decomposed = "cafe\u{301}"

    private func events() -> [IndexEvent] {
        [IndexEvent(entity: composed, version: 1, state: "received", at: 1, keys: ["owner": "a"], document: #"{"who":"composed"}"#),
         IndexEvent(entity: decomposed, version: 1, state: "received", at: 2, keys: ["owner": "b"], document: #"{"who":"decomposed"}"#)]
    }

    private func rowsAsBytes(_ index: StatusIndex) throws -> [[UInt8]] {
        try index.dump().map { Array($0.entity.utf8) + [0] + Array($0.document.utf8) }.sorted { $0.lexicographicallyPrecedes($1) }
    }

    @Test func aRebuildKeepsCanonicallyEquivalentIdsApartAsCatchingUpDoes() throws {
        #expect(composed == decomposed && Array(composed.utf8) != Array(decomposed.utf8))
        let (directory, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        try journal.append(events().map { $0.encoded() }, durability: .durable)

        let caughtUp = try StatusIndex(path: directory.sub("caught-up.sqlite"))
        try caughtUp.catchUp(from: journal, batchSize: 1)
        let rebuilt = try StatusIndex(path: directory.sub("rebuilt.sqlite"))
        try rebuilt.rebuild(from: journal)
        #expect(try caughtUp.count() == 2)
        #expect(try rebuilt.count() == 2, "the rebuild merged two entities")
        #expect(try rowsAsBytes(rebuilt) == (try rowsAsBytes(caughtUp)))
    }

    @Test func anUnprojectedLookupAnswersOnlyForTheExactId() throws {
        let (directory, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        let index = try StatusIndex(path: directory.sub("index.sqlite"))
        try index.catchUp(from: journal)
        try journal.append([events()[1].encoded()], durability: .durable)  // only the decomposed one
        #expect(try index.unprojected(composed, in: journal) == nil, "answered for café (U+00E9) with the row of cafe + U+0301")
        #expect(try index.unprojected(decomposed, in: journal)?.document == #"{"who":"decomposed"}"#)
    }
}
