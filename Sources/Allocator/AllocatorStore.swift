import Foundation
import GRDB
import Rentals
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
    let spool: Spool
    /// The store's file.
    public let path: String

    /// What the operator should do about a damaged store (part of the ``DatabaseDamage`` line).
    static let remedy = "stop the allocator and restore the store from a backup (docs/operations.md, \"Backup and restore\") or salvage it with sqlite3 .recover, then start the allocator again"

    /// Opens (creating) the store of `spool`. Every opening (the allocator's start, each
    /// `spoolctl units`, `reconcile`) first runs `PRAGMA quick_check`, before the migrator can
    /// write to a damaged file: it reads the whole file, about 30 ms for 50,000 rentals (31 MB)
    /// with the file cached.
    ///
    /// - Throws: ``DatabaseDamage`` when the store is damaged (SQLite reports it corrupt or not
    ///   a database, the check fails, or its migrations table does not decode) twice in a row
    ///   (see ``confirmDamage(_:)``), after copying it to `corrupt/`; the store is left in
    ///   place and nothing is repaired or replaced. Other failures (busy, full disk,
    ///   permissions, I/O) are thrown as they are.
    ///
    /// With `readOnly` (for a process its caller may stop: a restricted `spoolctl units list`),
    /// the existing store is opened through read-only connections: no lock file, no check, no
    /// migration, no write, so nothing the allocator waits for; damage is reported in use.
    public init(spool: Spool, readOnly: Bool = false) throws {
        self.spool = spool
        let path = try spool.directoryPath("allocator") + "/state.sqlite"
        self.path = path
        let open = {
            try SpoolDatabase.open(path: path, label: "allocator", readOnly: readOnly, migrator: Self.migrator,
                                   check: { try DatabaseDamage.quickCheck($0); try Self.checkSchema($0) })
        }
        do {
            database = try open()
        } catch where DatabaseDamage.isDamage(error) {
            // A failed read can look like damage (see confirmDamage): a second opening decides.
            do { database = try open() } catch where DatabaseDamage.isDamage(error) {
                throw spool.keepDamagedDatabase(path: path, name: "allocator.state.sqlite", cause: error, remedy: Self.remedy)
            }
        }
    }

    /// Runs `body` in a read transaction; damage found in use is reported like damage at open.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try reportingDamage { try database.read(body) }
    }

    /// Runs `body` in a write transaction; damage found in use is reported like damage at open.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        try reportingDamage { try database.write(body) }
    }

    /// Runs `body`, turning a confirmed damage error into a ``DatabaseDamage`` (with a copy in
    /// `corrupt/`).
    private func reportingDamage<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch where DatabaseDamage.isDamage(error) {
            try confirmDamage(error)
        }
    }

    /// SQLite reports some failed reads as damage: `pread` failing with `EIO` becomes
    /// `SQLITE_IOERR_CORRUPTFS` and, on some paths, `SQLITE_CORRUPT`, though the file is whole
    /// (the faults campaign's libfiu found it). A transient failure must not stop the allocator
    /// for good (exit 65, not restarted), so `PRAGMA integrity_check` decides (except for
    /// damage found in values SQLite did read, which is certain): damage it
    /// confirms is thrown as ``DatabaseDamage``; otherwise ``UnconfirmedDamage`` (or the check's
    /// own I/O error), a failure the caller retries.
    private func confirmDamage(_ error: any Error) throws -> Never {
        if DatabaseDamage.isContentDamage(error) {  // values SQLite read whole: certain
            throw spool.keepDamagedDatabase(path: path, name: "allocator.state.sqlite", cause: error, remedy: Self.remedy)
        }
        do { try DatabaseDamage.integrityCheck(database) } catch where DatabaseDamage.isDamage(error) {
            throw spool.keepDamagedDatabase(path: path, name: "allocator.state.sqlite", cause: error, remedy: Self.remedy)
        }
        throw UnconfirmedDamage(cause: error)
    }

    /// SQLite reported damage that an integrity check did not find: a transient read failure.
    struct UnconfirmedDamage: Error, CustomStringConvertible {
        let cause: any Error
        var description: String { "the allocator store reported damage that its integrity check does not find (a failed read?): \(cause)" }
    }

    /// Checkpoints the store's WAL into the database and truncates it to zero bytes.
    public func checkpoint() throws { try reportingDamage { try SpoolDatabase.checkpoint(database) } }

    /// Compares the store's schema (`sqlite_master`) with what ``migrator`` creates up to the
    /// migrations the store lists, and throws ``StoredContentDamage`` when they differ: a damaged
    /// byte in the schema's text that still parses (a renamed column, say) is not found by
    /// `quick_check`, and then every statement failed with `SQLITE_ERROR` ("no such column"),
    /// which is not damage, so the allocator exited 74 and was restarted for ever. Migrations
    /// the migrator does not know, or not a prefix of its list, are damage too.
    static func checkSchema(_ database: any DatabaseReader) throws {
        let query = "SELECT type || ' ' || name || ' ' || tbl_name || ' ' || IFNULL(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
        let (applied, schema) = try database.read { db -> ([String], [String]) in
            let schema = try String.fetchAll(db, sql: query)
            guard try db.tableExists("grdb_migrations") else { return ([], schema) }
            return (try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations"), schema)
        }
        let known = migrator.migrations
        guard Set(applied) == Set(known.prefix(applied.count)), applied.count == Set(applied).count else {
            throw StoredContentDamage("the migrations table lists \(applied), not a prefix of \(known)")
        }
        let expected = try DatabaseQueue()
        if let last = known.prefix(applied.count).last { try migrator.migrate(expected, upTo: last) }
        let wanted = try expected.read { db in try String.fetchAll(db, sql: query) }
        // No migration yet: nothing but GRDB's table of them (a first migration that failed).
        guard applied.isEmpty ? schema.allSatisfy({ $0.hasPrefix("table grdb_migrations ") }) : schema == wanted else {
            let differing = Set(schema).symmetricDifference(wanted).sorted().first ?? ""
            throw StoredContentDamage("the schema differs from the one the allocator creates (\(differing.prefix(120)))")
        }
    }

    static var migrator: DatabaseMigrator {
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
        // Decisions by index seeks (``Availability``): the assigned rentals' unit and period in
        // one covering partial index (completed, cancelled and rejected rentals are not in it),
        // and their ends for the daily completion. One transaction with its row in
        // `grdb_migrations`: a crash leaves the store at v1 (migrated again at the next opening)
        // or at v2, never between.
        migrator.registerMigration("v2-holdings-index") { db in
            try db.execute(sql: """
                CREATE INDEX rental_span ON rental(unit_id, start_day, end_day, state) WHERE state = 'assigned';
                DROP INDEX rental_holding;
                CREATE INDEX rental_ending ON rental(end_day) WHERE state = 'assigned';
                """)
        }
        // Retention pruning (``RetentionPruning``) finds the finished rentals past retention by
        // an index seek instead of reading every rental: the rentals no longer assigned, by their
        // last change. Versioned and transactional as v2.
        migrator.registerMigration("v3-finished-index") { db in
            try db.execute(sql: "CREATE INDEX rental_finished ON rental(updated_at) WHERE state <> 'assigned';")
        }
        registerV4(&migrator)
        return migrator
    }

    // MARK: Inventory

    /// Adds new units, all or none, in one transaction; then runs `afterChange` in it (the
    /// waiting list's promotion, ``WaitlistPromotion``).
    ///
    /// An existing unit is never changed here (see ``changeUnit(_:size:site:sizes:afterChange:)``).
    ///
    /// - Throws: ``InventoryError``: for an id, size or site outside the rules, an id given twice
    ///   (`duplicateUnit`) or ids already in the inventory (`unitsExist`, checked in the same
    ///   transaction as the insert); nothing is added then.
    public func addUnits(_ units: [StorageUnit], sizes: [SizeClass], afterChange: InventoryHook? = nil) throws {
        for unit in units { try InventoryError.check(unit, sizes: sizes) }
        var seen = Set<String>()
        for unit in units where !seen.insert(unit.id).inserted { throw InventoryError.duplicateUnit(unit.id) }
        try write { db in
            var existing: [String] = []
            for unit in units where try Bool.fetchOne(db, sql: "SELECT 1 FROM unit WHERE id = ?", arguments: [unit.id]) != nil {
                existing.append(unit.id)
            }
            if !existing.isEmpty { throw InventoryError.unitsExist(existing) }
            for unit in units {
                try db.execute(sql: "INSERT INTO unit (id, size, site, in_service, added_at) VALUES (?, ?, ?, ?, ?)",
                               arguments: [unit.id, unit.size.uppercased(), unit.site, unit.inService, Clock.nowMilliseconds()])
            }
            try afterChange?(db)
        }
    }

    /// Which of `ids` are in the inventory now (for reporting; ``addUnits(_:sizes:)`` checks
    /// again in its transaction).
    public func existingUnitIDs(among ids: [String]) throws -> Set<String> {
        try read { db in
            Set(try ids.filter { try Bool.fetchOne(db, sql: "SELECT 1 FROM unit WHERE id = ?", arguments: [$0]) != nil })
        }
    }

    /// Changes the size and/or site of unit `id`; returns the unit as it is now. A change runs
    /// `afterChange` in its transaction (the waiting list's promotion).
    ///
    /// A unit that holds a rental (assigned or confirmed, not yet cancelled or completed) keeps
    /// its size and site: the customer was promised that unit there. The check and the change
    /// are one transaction, so an allocation cannot slip in between.
    ///
    /// - Throws: ``InventoryError``: `unknownUnit`, a size or site outside the rules, or
    ///   `unitHeld` naming the rentals that hold it.
    @discardableResult
    public func changeUnit(_ id: String, size: String?, site: String?, sizes: [SizeClass], afterChange: InventoryHook? = nil) throws -> StorageUnit {
        try write { db in
            guard let unit = try StorageUnit.fetchOne(db, sql: "SELECT id, size, site, in_service FROM unit WHERE id = ?", arguments: [id]) else {
                throw InventoryError.unknownUnit(id)
            }
            var changed = unit
            if let size { changed.size = size.uppercased() }
            if let site { changed.site = site }
            try InventoryError.check(changed, sizes: sizes)
            guard changed != unit else { return unit }
            let holders = try String.fetchAll(db, sql: "SELECT request_id FROM rental WHERE unit_id = ? AND state = 'assigned' ORDER BY start_day",
                                              arguments: [id])
            if !holders.isEmpty { throw InventoryError.unitHeld(id, requests: holders) }
            try db.execute(sql: "UPDATE unit SET size = ?, site = ? WHERE id = ?", arguments: [changed.size, changed.site, id])
            try afterChange?(db)
            return changed
        }
    }

    /// Takes unit `id` out of service. Its existing rentals stand.
    ///
    /// - Throws: ``InventoryError/unknownUnit(_:)``.
    public func retireUnit(_ id: String) throws {
        try write { db in
            try db.execute(sql: "UPDATE unit SET in_service = 0 WHERE id = ?", arguments: [id])
            if db.changesCount == 0 { throw InventoryError.unknownUnit(id) }
        }
    }

    /// Every unit, by id.
    public func units() throws -> [StorageUnit] {
        try read { db in try StorageUnit.fetchAll(db, sql: "SELECT id, size, site, in_service FROM unit ORDER BY id") }
    }

    /// The holdings of unit `id`: request id and period of each active assignment, by start.
    public func holdings(unit id: String) throws -> [(request: String, period: RentalPeriod)] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT request_id, start_day, end_day FROM rental WHERE unit_id = ? AND state = 'assigned' ORDER BY start_day",
                             arguments: [id]).map { row in
                (try row.decode(String.self, forColumn: "request_id"), try Self.period(row))
            }
        }
    }

    /// Every active assignment, for invariant checks: unit, request, period.
    public func assignments() throws -> [(unit: String, request: String, period: RentalPeriod)] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT unit_id, request_id, start_day, end_day FROM rental WHERE state = 'assigned' ORDER BY unit_id, start_day")
                .map { row in
                    (try row.decode(String.self, forColumn: "unit_id"), try row.decode(String.self, forColumn: "request_id"), try Self.period(row))
                }
        }
    }

    /// The period in a row's `start_day` and `end_day`. A stored value is read with a throwing
    /// decode, never GRDB's trapping subscript: a damaged value (another type, NULL, a day far
    /// outside any calendar, an empty period) is damage (``StoredContentDamage``), reported like any
    /// other damage of the store instead of crashing the program.
    static func period(_ row: Row) throws -> RentalPeriod {
        let start = try day(row, "start_day"), end = try day(row, "end_day")
        guard let period = RentalPeriod(start: start, end: end) else {
            throw StoredContentDamage("a rental's period \(start.daysSinceEpoch)..\(end.daysSinceEpoch) is empty")
        }
        return period
    }

    /// The integer in column `index` of `row`, nil for NULL; any other stored type (text, a
    /// real, a blob: only damage puts one there) is ``StoredContentDamage``. Read through
    /// `DatabaseValue`, never GRDB's fast path for `Int`: on a row of a live cursor that path
    /// asks SQLite for the column as an integer, which turns the text `garbage` into 0, a day.
    static func storedInteger(_ row: Row, _ index: Int) throws -> Int? {
        try storedInteger(try row.decode(DatabaseValue.self, atIndex: index))
    }

    /// ``storedInteger(_:_:)`` of a value already read.
    static func storedInteger(_ value: DatabaseValue) throws -> Int? {
        switch value.storage {
        case .null: return nil
        case .int64(let value): return Int(value)
        case .double, .string, .blob: throw StoredContentDamage("a stored day is not an integer")
        }
    }

    /// The days a stored day may be: years 0000 to 9999, as days since the epoch.
    static let storedDays = -719_528...2_932_896

    /// A day stored as days since the epoch, within years 0000 to 9999 (else ``StoredContentDamage``).
    static func day(_ row: Row, _ column: String) throws -> CalendarDay {
        guard let days = try storedInteger(try row.decode(DatabaseValue.self, forColumn: column)) else {
            throw StoredContentDamage("\(column) is NULL")
        }
        guard storedDays.contains(days) else {
            throw StoredContentDamage("\(column) \(days) is not a day")
        }
        return CalendarDay(daysSinceEpoch: days)
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
    /// The same id is given twice in one addition.
    case duplicateUnit(String)
    /// These ids are in the inventory already.
    case unitsExist([String])
    /// The unit holds these rentals (current or future), so its size and site cannot change.
    case unitHeld(String, requests: [String])

    /// Checks `unit` against the rules (id, configured size, site) without touching the store.
    ///
    /// - Throws: ``InventoryError``.
    public static func validate(_ unit: StorageUnit, sizes: [SizeClass]) throws(InventoryError) {
        do { try check(unit, sizes: sizes) } catch let error as InventoryError { throw error } catch { throw .invalidUnitID(unit.id) }
    }

    static func check(_ unit: StorageUnit, sizes: [SizeClass]) throws {
        guard (1...32).contains(unit.id.utf8.count),
              unit.id.utf8.allSatisfy({ $0 < 128 && (Character(UnicodeScalar($0)).isLetter || Character(UnicodeScalar($0)).isNumber || $0 == 45 || $0 == 95) })
        else { throw InventoryError.invalidUnitID(unit.id) }
        guard sizes.contains(where: { $0.name == unit.size.uppercased() }) else { throw InventoryError.unknownSize(unit.size) }
        guard (1...64).contains(unit.site.count), !unit.site.contains(where: \.isNewline) else { throw InventoryError.invalidSite(unit.site) }
    }

    public var description: String {
        switch self {
        case .invalidUnitID(let id): return "unit id \(id.echoed) must be 1 to 32 letters, digits, - or _"
        case .unknownSize(let size): return "unknown unit size \(size.echoed)"
        case .invalidSite(let site): return "site \(site.echoed) must be 1 to 64 characters on one line"
        case .unknownUnit(let id): return "no unit \(id.echoed)"
        case .duplicateUnit(let id): return "unit \(id.echoed) is given twice"
        case .unitsExist(let ids):
            let shown = ids.prefix(10).joined(separator: ", ") + (ids.count > 10 ? " and \(ids.count - 10) more" : "")
            return "unit\(ids.count == 1 ? "" : "s") \(shown) exist\(ids.count == 1 ? "s" : "") already; nothing was added (change a unit with spoolctl units change)"
        case .unitHeld(let id, let requests):
            let shown = requests.prefix(5).joined(separator: ", ") + (requests.count > 5 ? " and \(requests.count - 5) more" : "")
            return "unit \(id) holds \(requests.count) current or future rental\(requests.count == 1 ? "" : "s") (\(shown)); its size and site cannot change while it does (retire it and add a new unit instead)"
        }
    }
}
