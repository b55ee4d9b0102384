import Foundation
import GRDB

/// The status index: a SQLite database (WAL mode) that projects the journal's ``IndexEvent``s
/// into one row per entity, for fast queries that never touch the write path (CQRS).
///
/// Every upsert is guarded by the entity's version, so the projection is idempotent and
/// order-independent: replaying the journal twice, or its segments in any order, gives the same
/// rows. The journal position consumed so far is stored in the same transaction as the rows it
/// produced, so ``catchUp(from:)`` after a crash resumes exactly. ``rebuild(from:)`` recreates the
/// index from the journal alone. A read-only index (``init(path:readOnly:)``) uses read-only
/// connections, which never block writers.
public final class StatusIndex: Sendable {
    private let database: DatabasePool
    /// The database file's path.
    public let path: String

    /// Opens the index at `path`. Read-write opening creates the file and its schema as needed;
    /// read-only opening requires an existing index.
    ///
    /// - Throws: ``SpoolError/notFound(_:)`` for a missing read-only index; GRDB's
    ///   `DatabaseError` for SQLite failures (`SQLITE_IOERR`, `SQLITE_FULL`, …).
    public init(path: String, readOnly: Bool = false) throws {
        self.path = path
        if readOnly {
            guard FileManager.default.fileExists(atPath: path) else { throw SpoolError.notFound("status index \(path)") }
        }
        database = try SpoolDatabase.open(path: path, label: "status-index", readOnly: readOnly, migrator: Self.migrator)
    }

    /// Where a spool keeps its status index: `index/status.sqlite` below the root (the `index`
    /// directory is created if missing).
    public static func defaultPath(in spool: Spool) throws(SpoolError) -> String {
        try spool.directoryPath("index") + "/status.sqlite"
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE entity (
                    id TEXT PRIMARY KEY NOT NULL,
                    version INTEGER NOT NULL,
                    state TEXT NOT NULL,
                    updated_at INTEGER NOT NULL,
                    keys TEXT NOT NULL,
                    document TEXT NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX entity_state ON entity(state, updated_at);
                CREATE TABLE entity_key (
                    entity_id TEXT NOT NULL REFERENCES entity(id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    value TEXT NOT NULL,
                    PRIMARY KEY (entity_id, name)
                ) WITHOUT ROWID;
                CREATE INDEX entity_key_lookup ON entity_key(name, value);
                CREATE TABLE projection (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    segment INTEGER NOT NULL,
                    offset INTEGER NOT NULL
                );
                """)
        }
        return migrator
    }

    // MARK: Writing

    /// Applies `events` in one transaction and, if given, records `position` as consumed.
    /// Returns how many entity rows changed.
    @discardableResult
    public func apply(_ events: [IndexEvent], consumedThrough position: JournalPosition? = nil) throws -> Int {
        try database.write { db in
            var changed = 0
            for event in events where try Self.upsert(event, db) { changed += 1 }
            if let position {
                // Only forward: two processes catching up at once must not move it back.
                try db.execute(sql: """
                    INSERT INTO projection (id, segment, offset) VALUES (1, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET segment = excluded.segment, offset = excluded.offset
                    WHERE (excluded.segment, excluded.offset) > (projection.segment, projection.offset)
                    """, arguments: [Int64(position.segment), position.offset])
            }
            return changed
        }
    }

    /// One version-guarded upsert: the row changes only for a higher version (or, at an equal
    /// version, a larger document), so order and repetition do not matter.
    private static func upsert(_ event: IndexEvent, _ db: Database) throws -> Bool {
        try db.cachedStatement(sql: """
            INSERT INTO entity (id, version, state, updated_at, keys, document) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET version = excluded.version, state = excluded.state,
                updated_at = excluded.updated_at, keys = excluded.keys, document = excluded.document
            WHERE excluded.version > entity.version
               OR (excluded.version = entity.version AND excluded.document > entity.document)
            """).execute(arguments: [event.entity, event.version, event.state, event.at, keysText(event.keys), event.document])
        guard db.changesCount > 0 else { return false }
        try db.cachedStatement(sql: "DELETE FROM entity_key WHERE entity_id = ?").execute(arguments: [event.entity])
        let insertKey = try db.cachedStatement(sql: "INSERT INTO entity_key (entity_id, name, value) VALUES (?, ?, ?)")
        for (name, value) in event.keys { try insertKey.execute(arguments: [event.entity, name, value]) }
        return true
    }

    private static func keysText(_ keys: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(keys)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// Projects every journal record after the stored position, in batches of `batchSize`
    /// records per transaction. Records that are not ``IndexEvent``s are skipped. Returns the
    /// number of records read. Safe to run from several processes at once.
    @discardableResult
    public func catchUp(from journal: Journal, batchSize: Int = 500) throws -> Int {
        try catchUpReportingDamage(from: journal, batchSize: batchSize).read
    }

    /// ``catchUp(from:batchSize:)``, also returning the damage the journal reader met (see
    /// ``Journal/read(from:_:)``).
    public func catchUpReportingDamage(from journal: Journal, batchSize: Int = 500) throws -> (read: Int, damage: [JournalDamage]) {
        var pending: [IndexEvent] = []
        var read = 0
        var last = try consumedPosition()
        let result = try journal.read(from: last) { record in
            read += 1
            if let event = IndexEvent.decode(record.payload) { pending.append(event) }
            last = record.next
            if read % batchSize == 0 {
                try apply(pending, consumedThrough: last)
                pending.removeAll(keepingCapacity: true)
            }
        }
        try apply(pending, consumedThrough: max(last, result.end))
        return (read, result.damage)
    }

    /// Empties the index and projects the whole journal again, in one transaction: readers see
    /// the old index until the new one is complete. Returns the damage the journal reader met.
    @discardableResult
    public func rebuild(from journal: Journal) throws -> [JournalDamage] {
        try database.write { db in
            try db.execute(sql: "DELETE FROM entity_key; DELETE FROM entity; DELETE FROM projection")
            var last = JournalPosition.start
            let result = try journal.read(from: .start) { record in
                if let event = IndexEvent.decode(record.payload) { _ = try Self.upsert(event, db) }
                last = record.next
            }
            let end = max(last, result.end)
            try db.execute(sql: "INSERT INTO projection (id, segment, offset) VALUES (1, ?, ?)",
                           arguments: [Int64(end.segment), end.offset])
            return result.damage
        }
    }

    // MARK: Reading

    /// The journal position projected so far.
    public func consumedPosition() throws -> JournalPosition {
        try database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT segment, offset FROM projection WHERE id = 1") else { return .start }
            return JournalPosition(segment: UInt64(row["segment"] as Int64), offset: row["offset"])
        }
    }

    /// The entity with `id`, if indexed.
    public func entity(_ id: String) throws -> IndexedEntity? {
        try database.read { db in try Self.fetch(db, where: "id = ?", [id]).first }
    }

    /// Entities whose key `name` equals `value`, most recently updated first.
    public func entities(key name: String, value: String, limit: Int = 1000) throws -> [IndexedEntity] {
        try database.read { db in
            try Self.fetch(db, where: "id IN (SELECT entity_id FROM entity_key WHERE name = ? AND value = ?)",
                           [name, value], limit: limit)
        }
    }

    /// Entities in `state` (or all, for nil), most recently updated first.
    public func entities(state: String?, limit: Int = 1000) throws -> [IndexedEntity] {
        try database.read { db in
            if let state { return try Self.fetch(db, where: "state = ?", [state], limit: limit) }
            return try Self.fetch(db, where: "1", [], limit: limit)
        }
    }

    /// Every row, ordered by id: for comparing two indexes.
    public func dump() throws -> [IndexedEntity] {
        try database.read { db in try Self.fetch(db, where: "1", [], order: "id", limit: Int.max) }
    }

    private static func fetch(_ db: Database, where condition: String, _ arguments: StatementArguments,
                              order: String = "updated_at DESC, id", limit: Int = 1000) throws -> [IndexedEntity] {
        try Row.fetchAll(db, sql: "SELECT * FROM entity WHERE \(condition) ORDER BY \(order) LIMIT \(limit)", arguments: arguments)
            .map { row in
                let keysText: String = row["keys"]
                let keys = (try? JSONDecoder().decode([String: String].self, from: Data(keysText.utf8))) ?? [:]
                return IndexedEntity(entity: row["id"], version: row["version"], state: row["state"],
                                     updatedAt: row["updated_at"], keys: keys, document: row["document"])
            }
    }
}
