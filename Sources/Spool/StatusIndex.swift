import Foundation
import GRDB

/// The status index: a SQLite database (WAL mode) that projects the journal's ``IndexEvent``s
/// into one row per entity, for fast queries that never touch the write path (CQRS).
///
/// Every upsert is guarded by the entity's version, so the projection is idempotent and
/// order-independent: replaying the journal twice, or its segments in any order, gives the same
/// rows. The journal position consumed so far is stored in the same transaction as the rows it
/// produced, so ``catchUp(from:batchSize:)`` after a crash resumes exactly.
///
/// The index of a spool (``init(spool:)``) is disposable and heals itself: it is opened on first
/// use, a file replaced or deleted under a running process is noticed at the next use and
/// reopened, and a missing, garbage, corrupt, schema-less or never-projected file is moved to
/// `corrupt/` and rebuilt from the journal (see `IndexFile`). ``rebuild(from:)`` builds a new
/// file and renames it over the old one, so readers see the old index or the new one, never an
/// empty or half-built one. An index opened by path (``init(path:readOnly:)``, for tests and
/// tools) is opened once and repairs nothing; a read-only one uses read-only connections, which
/// never block writers.
public final class StatusIndex: Sendable {
    private let fixed: DatabasePool?
    private let file: IndexFile?
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
        fixed = try SpoolDatabase.open(path: path, label: "status-index", readOnly: readOnly, migrator: Self.migrator)
        file = nil
    }

    /// The self-healing index of `spool` (at ``defaultPath(in:)``), rebuilt from `spool`'s
    /// journal when unusable. Opens nothing yet: a damaged index fails or repairs at first use,
    /// never here.
    ///
    /// - Throws: ``SpoolError`` when the `index` directory or the journal cannot be opened.
    ///
    /// With `readOnly` (for a process its caller may stop: a restricted `spoolctl`), the index is
    /// only read, through read-only connections: an unusable file throws instead of being
    /// rebuilt, and writing (``apply(_:consumedThrough:)``, ``catchUp(from:batchSize:)``) fails.
    /// Such a reader holds no lock a daemon waits for without bound: in WAL mode a reader never
    /// blocks writers, and a replacement gives up waiting for the shared `flock` after a few
    /// seconds (see `IndexFile`).
    /// `journal`, when given, is `spool`'s journal as the caller opened it (one open per process).
    public init(spool: Spool, journal: Journal? = nil, readOnly: Bool = false) throws(SpoolError) {
        path = try Self.defaultPath(in: spool)
        fixed = nil
        let opened: Journal
        if let journal { opened = journal } else { opened = try Journal(spool: spool) }
        let recovery = IndexRecovery(makeDirectory: { _ = try Self.defaultPath(in: spool) }, journal: opened,
                                     quarantine: spool.quarantine, logger: spool.logger)
        file = IndexFile(path: path, recovery: recovery, readOnly: readOnly, migrator: { Self.migrator })
    }

    /// Where a spool keeps its status index: `index/status.sqlite` below the root (the `index`
    /// directory is created if missing).
    public static func defaultPath(in spool: Spool) throws(SpoolError) -> String {
        try spool.directoryPath("index") + "/status.sqlite"
    }

    /// Runs `body` on the database (for a spool's index: the healthy file now at the path,
    /// through its read-only connection unless `writing`: queries never write the file).
    private func withDatabase<T>(writing: Bool = false, _ body: (any DatabaseWriter) throws -> T) throws -> T {
        if let fixed { return try body(fixed) }
        return try file!.withDatabase(writing: writing, body)
    }

    /// The secondary indexes, as the migration creates them: a rebuild drops them while it
    /// fills the tables and creates them again at the end (one sort instead of random inserts).
    static let secondaryIndexes = [
        (name: "entity_state", sql: "CREATE INDEX entity_state ON entity(state, updated_at)"),
        (name: "entity_key_lookup", sql: "CREATE INDEX entity_key_lookup ON entity_key(name, value)"),
    ]

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
                \(secondaryIndexes[0].sql);
                CREATE TABLE entity_key (
                    entity_id TEXT NOT NULL REFERENCES entity(id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    value TEXT NOT NULL,
                    PRIMARY KEY (entity_id, name)
                ) WITHOUT ROWID;
                \(secondaryIndexes[1].sql);
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
        try withDatabase(writing: true) { database in try Self.apply(events, consumedThrough: position, database) }
    }

    @discardableResult
    private static func apply(_ events: [IndexEvent], consumedThrough position: JournalPosition?,
                              _ database: any DatabaseWriter) throws -> Int {
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

    /// Entities gathered in memory by ``project(_:into:)`` before they are written.
    static let projectionWindow = 20_000

    /// True when `event` supersedes `known` by the index's version rule: a higher version, or at
    /// an equal version a larger document (compared as bytes, as SQLite compares text).
    static func supersedes(_ event: IndexEvent, _ known: IndexEvent) -> Bool {
        supersedes(event, version: known.version, document: known.document)
    }

    static func supersedes(_ event: IndexEvent, version: Int64, document: String) -> Bool {
        event.version > version || (event.version == version && document.utf8.lexicographicallyPrecedes(event.document.utf8))
    }

    /// Inserts `event`'s row and keys if the entity has no row yet; otherwise ``upsert(_:_:)``.
    private static func insertOrUpsert(_ event: IndexEvent, _ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO entity (id, version, state, updated_at, keys, document) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO NOTHING
            """).execute(arguments: [event.entity, event.version, event.state, event.at, keysText(event.keys), event.document])
        guard db.changesCount > 0 else {
            _ = try upsert(event, db)
            return
        }
        let insertKey = try db.cachedStatement(sql: "INSERT INTO entity_key (entity_id, name, value) VALUES (?, ?, ?)")
        for (name, value) in event.keys { try insertKey.execute(arguments: [event.entity, name, value]) }
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

    /// The keys as a JSON object, sorted by name (what `JSONEncoder` with `.sortedKeys` gives, but
    /// without its cost: a rebuild writes one per event).
    static func keysText(_ keys: [String: String]) -> String {
        var text = "{"
        for (offset, name) in keys.keys.sorted().enumerated() {
            if offset > 0 { text += "," }
            appendJSONString(name, to: &text)
            text += ":"
            appendJSONString(keys[name]!, to: &text)
        }
        return text + "}"
    }

    private static func appendJSONString(_ value: String, to text: inout String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                let digits = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }

    /// Projects every journal record after the stored position, in batches of `batchSize`
    /// records per transaction. Records that are not ``IndexEvent``s are skipped. Returns the
    /// number of records read. Safe to run from several processes at once. All batches go to
    /// one file: a replacement meanwhile waits for the catch-up to finish.
    @discardableResult
    public func catchUp(from journal: Journal, batchSize: Int = 500) throws -> Int {
        try catchUpReportingDamage(from: journal, batchSize: batchSize).read
    }

    /// ``catchUp(from:batchSize:)``, also returning the damage the journal reader met (see
    /// ``Journal/read(from:_:)``).
    public func catchUpReportingDamage(from journal: Journal, batchSize: Int = 500) throws -> (read: Int, damage: [JournalDamage]) {
        try withDatabase(writing: true) { database in
            var pending: [IndexEvent] = []
            var read = 0
            var last = try Self.consumedPosition(database)
            let result = try journal.read(from: last) { record in
                read += 1
                if let event = IndexEvent.decode(record.payload) { pending.append(event) }
                last = record.next
                if read % batchSize == 0 {
                    try Self.apply(pending, consumedThrough: last, database)
                    pending.removeAll(keepingCapacity: true)
                }
            }
            try Self.apply(pending, consumedThrough: max(last, result.end), database)
            return (read, result.damage)
        }
    }

    /// Projects the whole journal again. For a spool's index: into a new file, renamed over the
    /// old one once complete and durable (the old `-wal`/`-shm` removed first, under the
    /// index lock), so readers see the old index or the new one; the index is then checkpointed.
    /// For an index opened by path: in one transaction, with the same effect for readers.
    /// Returns the damage the journal reader met.
    @discardableResult
    public func rebuild(from journal: Journal) throws -> [JournalDamage] {
        if let file {
            let damage = try file.replace(try file.probe(), force: true).damage
            try checkpoint()
            return damage
        }
        return try fixed!.write { db in
            try db.execute(sql: "DELETE FROM entity_key; DELETE FROM entity; DELETE FROM projection")
            return try Self.project(journal, into: db)
        }
    }

    /// Upserts every index event of `journal` into `db` and records the end position.
    /// Returns the damage the journal reader met.
    @discardableResult
    ///
    /// The events of one request lie close together in the journal (submit, decision,
    /// notification), so they are gathered in a window of ``projectionWindow`` entities that
    /// keeps only each one's latest (by the version rule), and written when it fills: a third of
    /// the statements. A row not yet in the table is inserted with its keys, without the upsert's
    /// delete of old keys.
    static func project(_ journal: Journal, into db: Database) throws -> [JournalDamage] {
        var last = JournalPosition.start
        // Keyed by the id's bytes: distinct rows for ids Swift's `String` equality would merge.
        var window: [ExactText: IndexEvent] = [:]
        window.reserveCapacity(projectionWindow)
        func flush() throws {
            // In key order: the table and its keys are B-trees on the id.
            for event in window.values.sorted(by: { $0.entity.utf8.lexicographicallyPrecedes($1.entity.utf8) }) {
                try insertOrUpsert(event, db)
            }
            window.removeAll(keepingCapacity: true)
        }
        let result = try journal.read(from: .start) { record in
            if let event = IndexEvent.decode(record.payload) {
                let key = ExactText(event.entity)
                if let known = window[key], !supersedes(event, known) {} else { window[key] = event }
                if window.count >= projectionWindow { try flush() }
            }
            last = record.next
        }
        try flush()
        let end = max(last, result.end)
        try db.execute(sql: "INSERT INTO projection (id, segment, offset) VALUES (1, ?, ?)",
                       arguments: [Int64(end.segment), end.offset])
        return result.damage
    }

    /// Checkpoints the WAL into the index and truncates it to zero bytes.
    public func checkpoint() throws {
        try withDatabase(writing: true) { database in try SpoolDatabase.checkpoint(database) }
    }

    /// The latest status of every entity (or only of `entity`) in `journal`, computed in memory
    /// by the same version rule as the index: the answer when the index cannot be used.
    public static func scan(_ journal: Journal, entity: String? = nil) throws -> [String: IndexedEntity] {
        var latest: [String: IndexedEntity] = [:]
        _ = try journal.read(from: .start) { record in
            guard let event = IndexEvent.decode(record.payload), entity.map(event.entity.isByteEqual) ?? true else { return }
            if let known = latest[event.entity],
               !supersedes(event, version: known.version, document: known.document) { return }
            latest[event.entity] = IndexedEntity(entity: event.entity, version: event.version, state: event.state,
                                                 updatedAt: event.at, keys: event.keys, document: event.document)
        }
        return latest
    }

    // MARK: Reading

    /// The journal position projected so far.
    public func consumedPosition() throws -> JournalPosition {
        try withDatabase { database in try Self.consumedPosition(database) }
    }

    private static func consumedPosition(_ database: any DatabaseReader) throws -> JournalPosition {
        try database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT segment, offset FROM projection WHERE id = 1") else { return .start }
            let segment = try row.decode(Int64.self, forColumn: "segment")
            guard let sequence = UInt64(exactly: segment) else {
                throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "projection segment \(segment) is negative")
            }
            return JournalPosition(segment: sequence, offset: try row.decode(forColumn: "offset"))
        }
    }

    /// The entity with `id`, if indexed: one point query on the primary key, through the
    /// read-only connection.
    public func entity(_ id: String) throws -> IndexedEntity? {
        try withDatabase { database in
            try database.read { db in
                try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM entity WHERE id = ?"), arguments: [id]).map(Self.entity(row:))
            }
        }
    }

    /// The entity with `id` as the journal has it past the position the index consumed: its
    /// latest event there (by the index's version rule), or nil. Reads the journal's tail and
    /// writes nothing: what a reader asks when the index does not know `id` yet, without
    /// catching the index up (the daemons do).
    public func unprojected(_ id: String, in journal: Journal) throws -> IndexedEntity? {
        let position = try consumedPosition()
        var latest: IndexedEntity?
        _ = try journal.read(from: position) { record in
            guard let event = IndexEvent.decode(record.payload), event.entity.isByteEqual(to: id) else { return }
            if let known = latest,
               !Self.supersedes(event, version: known.version, document: known.document) { return }
            latest = IndexedEntity(event)
        }
        return latest
    }

    /// Entities whose key `name` equals `value`, most recently updated first.
    public func entities(key name: String, value: String, limit: Int = 1000) throws -> [IndexedEntity] {
        try withDatabase { database in
            try database.read { db in
                try Self.fetch(db, where: "id IN (SELECT entity_id FROM entity_key WHERE name = ? AND value = ?)",
                               [name, value], limit: limit)
            }
        }
    }

    /// Entities in `state` (or all, for nil), most recently updated first.
    public func entities(state: String?, limit: Int = 1000) throws -> [IndexedEntity] {
        try withDatabase { database in
            try database.read { db in
                if let state { return try Self.fetch(db, where: "state = ?", [state], limit: limit) }
                return try Self.fetch(db, where: "1", [], limit: limit)
            }
        }
    }

    /// The number of entities indexed.
    public func count() throws -> Int {
        try withDatabase { database in try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM entity") ?? 0 } }
    }

    /// Every row, ordered by id: for comparing two indexes.
    public func dump() throws -> [IndexedEntity] {
        try withDatabase { database in try database.read { db in try Self.fetch(db, where: "1", [], order: "id", limit: Int.max) } }
    }

    private static func fetch(_ db: Database, where condition: String, _ arguments: StatementArguments,
                              order: String = "updated_at DESC, id", limit: Int = 1000) throws -> [IndexedEntity] {
        try Row.fetchAll(db, sql: "SELECT * FROM entity WHERE \(condition) ORDER BY \(order) LIMIT \(limit)", arguments: arguments)
            .map(entity(row:))
    }

    /// The entity a row of `entity` holds. Throwing decodes: a damaged value is damage (the
    /// index is rebuilt), never a trap.
    private static func entity(row: Row) throws -> IndexedEntity {
        let keysText = try row.decode(String.self, forColumn: "keys")
        let keys = (try? JSONDecoder().decode([String: String].self, from: Data(keysText.utf8))) ?? [:]
        return IndexedEntity(entity: try row.decode(forColumn: "id"), version: try row.decode(forColumn: "version"),
                             state: try row.decode(forColumn: "state"), updatedAt: try row.decode(forColumn: "updated_at"),
                             keys: keys, document: try row.decode(forColumn: "document"))
    }
}
