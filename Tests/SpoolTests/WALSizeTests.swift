import Foundation
import GRDB
import Testing
@testable import Spool

/// The spool's SQLite databases keep their WAL files small (issue 7, item 16): a 2 MiB spool
/// once had 1.6 MB of WAL.
@Suite struct WALSizeTests {
    private func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    @Test func statusIndexWALStaysBoundedAndCheckpointEmptiesIt() throws {
        let directory = TemporaryDirectory("wal-index")
        let path = directory.sub("status.sqlite")
        let index = try StatusIndex(path: path)
        let document = String(repeating: "x", count: 4000)
        var largest = 0
        for step in 0..<1200 {
            try index.apply([IndexEvent(entity: "r\(step % 300)", version: Int64(step), state: "received", at: Int64(step),
                                        keys: ["customer": "c\(step)"], document: document)])
            if step % 50 == 0 { largest = max(largest, size(path + "-wal")) }
        }
        #expect(largest > 0)
        #expect(largest <= 1 << 20, "WAL grew to \(largest) bytes")
        try index.checkpoint()
        #expect(size(path + "-wal") == 0)
    }

    @Test func anySpoolDatabaseWALStaysBounded() throws {
        let directory = TemporaryDirectory("wal-store")
        let path = directory.sub("state.sqlite")
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, blob TEXT)") }
        let database = try SpoolDatabase.open(path: path, label: "test", migrator: migrator)
        var largest = 0
        for step in 0..<1200 {
            try database.write { db in
                try db.execute(sql: "INSERT OR REPLACE INTO t (id, blob) VALUES (?, ?)", arguments: [step % 200, String(repeating: "y", count: 4000)])
            }
            if step % 50 == 0 { largest = max(largest, size(path + "-wal")) }
        }
        #expect(largest <= 1 << 20, "WAL grew to \(largest) bytes")
        try SpoolDatabase.checkpoint(database)
        #expect(size(path + "-wal") == 0)
    }
}
