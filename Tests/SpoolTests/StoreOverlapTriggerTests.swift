import GRDB
import Logging
import Rentals
import Testing
@testable import Allocator

/// The store's last line against double booking: schema v4's triggers make SQLite refuse an
/// assigned rental overlapping another assigned rental of the same unit, whatever code wrote it.
@Suite struct StoreOverlapTriggerTests {
    private func insert(_ db: Database, _ id: String, unit: String, _ start: Int, _ end: Int, state: String = "assigned") throws {
        try db.execute(sql: """
            INSERT INTO rental (request_id, state, unit_id, start_day, end_day, status, updated_at) VALUES (?, ?, ?, ?, ?, '{}', 0)
            """, arguments: [id, state, unit, start, end])
    }

    @Test func sqliteRefusesOverlappingAssignmentsOfOneUnit() throws {
        let (directory, spool) = try makeSpool()
        defer { _ = directory }
        let service = try AllocationService(spool: spool, configuration: SystemConfiguration(), logger: Logger(label: "test"))
        try service.store.addUnits([StorageUnit(id: "A", size: "S", site: "x"), StorageUnit(id: "B", size: "S", site: "x")],
                                   sizes: SizeClass.defaults)
        try service.store.write { db in
            try insert(db, "r1", unit: "A", 100, 110)
            try insert(db, "r2", unit: "A", 110, 120)  // adjacent: fine
            try insert(db, "r3", unit: "B", 105, 115)  // another unit: fine
            try insert(db, "r4", unit: "A", 105, 112, state: "cancelled")  // not assigned: fine
        }
        #expect(throws: DatabaseError.self) { try service.store.write { db in try insert(db, "r5", unit: "A", 109, 111) } }
        // Extending r1 into r2, moving r3 onto A, or reviving r4 are refused too.
        #expect(throws: DatabaseError.self) {
            try service.store.write { db in try db.execute(sql: "UPDATE rental SET end_day = 111 WHERE request_id = 'r1'") }
        }
        #expect(throws: DatabaseError.self) {
            try service.store.write { db in try db.execute(sql: "UPDATE rental SET unit_id = 'A' WHERE request_id = 'r3'") }
        }
        #expect(throws: DatabaseError.self) {
            try service.store.write { db in try db.execute(sql: "UPDATE rental SET state = 'assigned' WHERE request_id = 'r4'") }
        }
        // Shortening is fine, and the refused writes changed nothing.
        try service.store.write { db in try db.execute(sql: "UPDATE rental SET end_day = 108 WHERE request_id = 'r1'") }
        let count = try service.store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM rental WHERE state = 'assigned'") }
        #expect(count == 3)
    }
}
