import Foundation
import GRDB
import Intake
import Spool

/// A storage unit in the inventory.
public struct StorageUnit: Codable, Sendable, Equatable, FetchableRecord {
    /// Its id, e.g. `A-101`.
    public var id: String
    /// Its size class name.
    public var size: String
    /// Where it is.
    public var site: String
    /// False once retired: it gets no new rentals; existing ones stand.
    public var inService: Bool

    /// A unit.
    public init(id: String, size: String, site: String, inService: Bool = true) {
        self.id = id
        self.size = size
        self.site = site
        self.inService = inService
    }

    enum CodingKeys: String, CodingKey {
        case id, size, site
        case inService = "in_service"
    }
}

/// The allocator's own state: `allocator/state.sqlite` in the spool (SQLite, WAL, via GRDB).
///
/// It holds the inventory, every request the allocator has decided with the unit and period it
/// holds, the keys of processed commands (idempotent consumer) and the outbox of messages to
/// publish after each decision (transactional outbox). Writes use `BEGIN IMMEDIATE` (GRDB's
/// default for writes), so several
/// allocator processes serialize their decisions and a unit is never assigned twice for one day.
public final class AllocatorStore: Sendable {
    let database: DatabasePool

    /// Opens (creating) the store of `spool`.
    public init(spool: Spool) throws {
        database = try SpoolDatabase.open(path: try spool.directoryPath("allocator") + "/state.sqlite",
                                          label: "allocator", migrator: Self.migrator)
    }

    /// Checkpoints the store's WAL into the database and truncates it to zero bytes.
    public func checkpoint() throws { try SpoolDatabase.checkpoint(database) }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE unit (
                    id TEXT PRIMARY KEY NOT NULL,
                    size TEXT NOT NULL,
                    site TEXT NOT NULL,
                    in_service INTEGER NOT NULL DEFAULT 1,
                    added_at INTEGER NOT NULL
                );
                CREATE INDEX unit_size ON unit(size, in_service);
                CREATE TABLE rental (
                    request_id TEXT PRIMARY KEY NOT NULL,
                    state TEXT NOT NULL,
                    unit_id TEXT REFERENCES unit(id),
                    start_day INTEGER NOT NULL,
                    end_day INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                CREATE INDEX rental_holding ON rental(unit_id, start_day) WHERE state = 'assigned';
                CREATE TABLE processed (
                    key TEXT PRIMARY KEY NOT NULL,
                    at INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE outbox (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL,
                    item_id TEXT,
                    payload BLOB NOT NULL
                );
                """)
        }
        return migrator
    }

    // MARK: Inventory

    /// Adds units, or updates size and site of existing ones (in one transaction).
    ///
    /// - Throws: ``InventoryError`` for an id or size outside the rules.
    public func addUnits(_ units: [StorageUnit], sizes: [SizeClass]) throws {
        for unit in units { try InventoryError.check(unit, sizes: sizes) }
        try database.write { db in
            for unit in units {
                try db.execute(sql: """
                    INSERT INTO unit (id, size, site, in_service, added_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET size = excluded.size, site = excluded.site, in_service = excluded.in_service
                    """, arguments: [unit.id, unit.size.uppercased(), unit.site, unit.inService, Clock.nowMilliseconds()])
            }
        }
    }

    /// Takes unit `id` out of service. Its existing rentals stand.
    ///
    /// - Throws: ``InventoryError/unknownUnit(_:)``.
    public func retireUnit(_ id: String) throws {
        try database.write { db in
            try db.execute(sql: "UPDATE unit SET in_service = 0 WHERE id = ?", arguments: [id])
            if db.changesCount == 0 { throw InventoryError.unknownUnit(id) }
        }
    }

    /// Every unit, by id.
    public func units() throws -> [StorageUnit] {
        try database.read { db in try StorageUnit.fetchAll(db, sql: "SELECT id, size, site, in_service FROM unit ORDER BY id") }
    }

    /// The holdings of unit `id`: request id and period of each active assignment, by start.
    public func holdings(unit id: String) throws -> [(request: String, period: RentalPeriod)] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT request_id, start_day, end_day FROM rental WHERE unit_id = ? AND state = 'assigned' ORDER BY start_day",
                             arguments: [id]).map { row in
                (row["request_id"], RentalPeriod(start: CalendarDay(daysSinceEpoch: row["start_day"]), end: CalendarDay(daysSinceEpoch: row["end_day"]))!)
            }
        }
    }

    /// Every active assignment, for invariant checks: unit, request, period.
    public func assignments() throws -> [(unit: String, request: String, period: RentalPeriod)] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT unit_id, request_id, start_day, end_day FROM rental WHERE state = 'assigned' ORDER BY unit_id, start_day")
                .map { row in
                    (row["unit_id"], row["request_id"],
                     RentalPeriod(start: CalendarDay(daysSinceEpoch: row["start_day"]), end: CalendarDay(daysSinceEpoch: row["end_day"]))!)
                }
        }
    }
}

/// Why an inventory change was refused.
public enum InventoryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The id is not 1–32 letters, digits, `-` or `_`.
    case invalidUnitID(String)
    /// The size is not a configured class.
    case unknownSize(String)
    /// The site is empty or longer than 64 characters.
    case invalidSite(String)
    /// No unit has this id.
    case unknownUnit(String)

    static func check(_ unit: StorageUnit, sizes: [SizeClass]) throws {
        guard (1...32).contains(unit.id.utf8.count),
              unit.id.utf8.allSatisfy({ $0 < 128 && (Character(UnicodeScalar($0)).isLetter || Character(UnicodeScalar($0)).isNumber || $0 == 45 || $0 == 95) })
        else { throw InventoryError.invalidUnitID(unit.id) }
        guard sizes.contains(where: { $0.name == unit.size.uppercased() }) else { throw InventoryError.unknownSize(unit.size) }
        guard (1...64).contains(unit.site.count), !unit.site.contains(where: \.isNewline) else { throw InventoryError.invalidSite(unit.site) }
    }

    public var description: String {
        switch self {
        case .invalidUnitID(let id): return "unit id \(id.debugDescription) must be 1 to 32 letters, digits, - or _"
        case .unknownSize(let size): return "unknown unit size \(size.debugDescription)"
        case .invalidSite(let site): return "site \(site.debugDescription) must be 1 to 64 characters on one line"
        case .unknownUnit(let id): return "no unit \(id)"
        }
    }
}
