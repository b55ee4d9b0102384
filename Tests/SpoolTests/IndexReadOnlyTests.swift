import Foundation
import GRDB
import Testing
@testable import Spool

/// The status index of a spool is read without writing (issue 9): queries go through a
/// read-only connection, so `spoolctl status` and `list` neither sync nor change the index
/// files; and its WAL stays bounded although short-lived writers never checkpoint on close.
@Suite struct IndexReadOnlyTests {
    /// Size and modification time (ns) of the database and its WAL.
    private func snapshot(_ path: String) -> [String: [Int]] {
        var result: [String: [Int]] = [:]
        for file in [path, path + "-wal"] {
            var status = stat()
            guard stat(file, &status) == 0 else { continue }
            result[file] = [Int(status.st_size), Int(status.st_mtim.tv_sec), Int(status.st_mtim.tv_nsec), Int(status.st_ino)]
        }
        return result
    }

    private func event(_ index: Int, version: Int64 = 1) -> IndexEvent {
        IndexEvent(entity: "r\(index)", version: version, state: index % 2 == 0 ? "received" : "assigned", at: Int64(index),
                   keys: ["customer": "c\(index % 7)", "submitted_by": "1000"], document: #"{"n":\#(index)}"#)
    }

    @Test func queriesOfASpoolsIndexWriteNothingToItsFiles() throws {
        let (_, spool) = try makeSpool()
        let path = try StatusIndex.defaultPath(in: spool)
        do {
            let index = try StatusIndex(spool: spool)
            try index.apply((0..<100).map { event($0) })
            try index.catchUp(from: try Journal(spool: spool))
            // An empty WAL: what made GRDB write a table to make one, at every open of a pool.
            try index.checkpoint()
        }
        let before = snapshot(path)
        #expect(before.count == 2)
        do {
            let index = try StatusIndex(spool: spool)  // another process: opens the files afresh
            #expect(try index.entity("r17")?.state == "assigned")
            #expect(try index.entity("nope") == nil)
            #expect(try index.entities(state: "received").count == 50)
            #expect(try index.entities(state: nil).count == 100)
            #expect(try index.entities(key: "customer", value: "c3").count == 14)
            #expect(try index.consumedPosition() >= .start)
            #expect(try index.unprojected("r17", in: try Journal(spool: spool)) == nil)
        }
        #expect(snapshot(path) == before, "a query changed the index files")
    }

    @Test func aRequestJournaledButNotYetProjectedIsFoundWithoutWritingTheIndex() throws {
        let (_, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        let index = try StatusIndex(spool: spool)
        try index.apply([event(1)])
        try index.catchUp(from: journal)
        try index.checkpoint()
        try journal.append([event(2).encoded(), event(2, version: 2).encoded(), event(3).encoded()], durability: .durable)
        let path = try StatusIndex.defaultPath(in: spool)
        let before = snapshot(path)
        let reader = try StatusIndex(spool: spool)
        #expect(try reader.entity("r2") == nil)
        #expect(try reader.unprojected("r2", in: journal)?.version == 2)
        #expect(try reader.unprojected("r4", in: journal) == nil)
        #expect(snapshot(path) == before)
    }

    @Test func theWALStaysBoundedWhenWritersNeverOverlap() throws {
        let (_, spool) = try makeSpool()
        let path = try StatusIndex.defaultPath(in: spool)
        let document = String(repeating: "x", count: 2000)
        var largest = 0
        for step in 0..<400 {
            // One process per step, as `spoolctl submit` is: open, write one row, close.
            let index = try StatusIndex(spool: spool)
            try index.apply([IndexEvent(entity: "r\(step)", version: 1, state: "received", at: Int64(step), document: document)])
            var status = stat()
            if stat(path + "-wal", &status) == 0 { largest = max(largest, Int(status.st_size)) }
        }
        #expect(largest <= 1 << 20, "WAL grew to \(largest) bytes")
        #expect(try StatusIndex(spool: spool).entities(state: "received", limit: 1000).count == 400)
    }

    @Test func databasesOpenedForTheSpoolCommitDurably() throws {
        let (directory, _) = try makeSpool()
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY)") }
        let database = try SpoolDatabase.open(path: directory.sub("store.sqlite"), label: "test", migrator: migrator)
        // The writer's setting, which commits use (GRDB's WAL set-up makes it NORMAL).
        #expect(try database.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)
    }
}

/// The keys column is written without `JSONEncoder` (a rebuild writes one per event): it must
/// still be JSON that decodes to the same keys, for any strings.
@Suite struct IndexKeysTextTests {
    @Test func keysTextDecodesToTheSameKeysForAnyStrings() throws {
        var generator = SeededGenerator(seed: 77)
        let alphabet: [Unicode.Scalar] = ["a", "Z", "0", "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{1f}", "\u{7f}", "é", "€", "😀", " ", "{", ":"]
        for _ in 0..<500 {
            var keys: [String: String] = [:]
            for _ in 0..<Int.random(in: 0...4, using: &generator) {
                func text() -> String {
                    var value = String.UnicodeScalarView()
                    for _ in 0..<Int.random(in: 0...12, using: &generator) { value.append(alphabet.randomElement(using: &generator)!) }
                    return String(value)
                }
                keys[text()] = text()
            }
            let encoded = StatusIndex.keysText(keys)
            #expect(try JSONDecoder().decode([String: String].self, from: Data(encoded.utf8)) == keys, "\(encoded)")
        }
        #expect(StatusIndex.keysText(["submitted_by": "0", "customer": "c1@example.com"]) == #"{"customer":"c1@example.com","submitted_by":"0"}"#)
    }
}
