#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import GRDBSQLite
import Spool

/// The read model of the allocator's store: a read-only connection to `allocator/state.sqlite`
/// for questions anyone may ask (`spoolctl availability`), answered from the store itself
/// without taking part in the allocator's write path.
///
/// **Why a connection and not a projection.** The store is in WAL mode: a reader neither blocks
/// the allocator's writer nor waits for it, and each answer (``read(_:)``) is one read
/// transaction, one consistent snapshot as of the last commit. There is no second copy to keep
/// up to date, no staleness and no rebuild path to get wrong.
///
/// **What it never does.** It opens the file `SQLITE_OPEN_READONLY` with `query_only` set: it
/// never migrates (a store at v3 stays v3; ``schemaAtLeastV4`` tells the callers, who then leave
/// out what v4 adds), never writes, takes no lock file, runs no `quick_check`, and never copies a
/// damaged store to `corrupt/` (the allocator and `reconcile` deal with damage; a reader reports
/// it). It never creates the store or its directory: with no store yet, ``read(_:)`` runs on an
/// empty in-memory database of the current schema, so every answer is "nothing" rather than an
/// error. Temporary tables and sort spills stay in memory (`temp_store = MEMORY`): a setgid
/// `spoolctl` never writes store contents into a temporary directory its caller can open.
///
/// **Bounded.** Each read gets one deadline, ``timeLimit`` from its start: a progress handler
/// aborts a statement running past it and a busy handler gives up waiting for a lock past it
/// (a WAL reader waits only while another connection recovers the WAL index); either ends the
/// read with ``TimedOut`` (exit 75, try later), never a hang.
///
/// **The cost the allocator pays for it** (docs/reliability.md, "Limits"): while a
/// reader is inside its read transaction, checkpoints cannot reset the WAL past the reader's
/// snapshot, so the WAL grows with the allocator's commits until the reader ends (a reader
/// stopped with `SIGSTOP` keeps it growing). The same limit as the status index's readers.
public struct StoreReader: Sendable {
    /// The longest one read may take, waiting for locks included.
    public static let timeLimit: Duration = .seconds(2)

    /// A read that did not finish within ``timeLimit``: the store is busy or very large; retry.
    public struct TimedOut: Error, CustomStringConvertible, Sendable {
        /// The store's file.
        public var path: String
        public var description: String {
            "the allocator's store \(path) did not answer within \(StoreReader.timeLimit.components.seconds) s (busy, or being recovered); try again"
        }
    }

    private let database: DatabaseQueue
    /// The store's file (whether or not it exists).
    public let path: String
    /// False when no store exists yet (answers are then empty).
    public let storeExists: Bool
    /// True when the store has schema v4 (waiting list, rates); always true without a store
    /// (the empty stand-in is current). A store at v3 (the allocator not yet restarted after
    /// an upgrade) has no `waitlist` or `rate` table: callers leave those parts out.
    public let schemaAtLeastV4: Bool

    /// Opens the store of `spool` for reading (see the type's description).
    ///
    /// - Throws: GRDB's `DatabaseError` when the file cannot be opened or is not a database
    ///   (`SQLITE_NOTADB`); ``StoredContentDamage`` for a file without the allocator's schema
    ///   (both are damage: ``DatabaseDamage/isDamage(_:)``); ``TimedOut``.
    public init(spool: Spool) throws {
        // The path as the allocator's store has it, without creating `allocator/`.
        let path = (spool.path.hasSuffix("/") ? spool.path : spool.path + "/") + "allocator/state.sqlite"
        self.path = path
        var status = stat()
        if stat(path, &status) != 0, errno == ENOENT {
            let empty = try DatabaseQueue()
            try AllocatorStore.migrator.migrate(empty)
            database = empty
            storeExists = false
            schemaAtLeastV4 = true
            return
        }
        try Self.requireSidecars(of: path)
        do { database = try DatabaseQueue(path: path, configuration: Self.configuration) } catch let error as DatabaseError
            where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_INTERRUPT {
            throw TimedOut(path: path)
        }
        storeExists = true
        schemaAtLeastV4 = try Self.bounded(database, path: path) { db in
            // The store is created whole (migrated, then renamed into place): a file without the
            // first migration (zero-length, or not the allocator's) is damage, not "no units".
            let applied = try db.tableExists("grdb_migrations") ? try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") : []
            guard applied.contains("v1") else {
                throw StoredContentDamage("\(path) holds no allocator schema (zero-length, or not the allocator's store)")
            }
            return applied.contains("v4-waitlist-prices")
        }
    }

    /// The store exists but its `-wal` or `-shm` file does not (restored from a backup, or removed
    /// by hand, and no read-write opening since): a read-only SQLite connection would create both,
    /// and in a restricted (setgid) `spoolctl` they would belong to the caller. Try again once the
    /// allocator (or an operator's `units`/`prices` command) has opened the store.
    public struct NotReady: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var description: String {
            "the allocator's store \(path) has no -wal/-shm file yet (the allocator makes them when it opens the store); try again later"
        }
    }

    /// Throws ``NotReady`` when a restricted process (``ProcessRights/isRestricted``) would make
    /// SQLite create `path`'s `-wal` or `-shm` file as its caller. Only the spool's group and root
    /// can remove them, so the caller cannot race this check.
    public static func requireSidecars(of path: String) throws {
        guard ProcessRights.isRestricted else { return }
        var status = stat()
        for suffix in ["-wal", "-shm"] where lstat(path + suffix, &status) != 0 && errno == ENOENT {
            throw NotReady(path: path)
        }
    }

    /// Runs `body` in one deferred read transaction (one snapshot of the store), within
    /// ``timeLimit``.
    ///
    /// - Throws: ``TimedOut``; what `body` throws; GRDB errors (`SQLITE_CORRUPT` for damage).
    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        try Self.bounded(database, path: path, body)
    }

    /// The connection's settings: read-only, the spool's WAL rule (`SQLITE_FCNTL_PERSIST_WAL`:
    /// closing never deletes `-wal`/`-shm`), `query_only`, temporary storage in memory, and a
    /// busy timeout of ``timeLimit`` for the opening itself (each read sets its own deadline).
    static var configuration: Configuration {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.label = "allocator-reader"
        configuration.busyMode = .timeout(TimeInterval(timeLimit.components.seconds))
        configuration.prepareDatabase { db in
            var persist: Int32 = 1
            _ = sqlite3_file_control(db.sqliteConnection, "main", SQLITE_FCNTL_PERSIST_WAL, &persist)
            try db.execute(sql: "PRAGMA query_only = 1")
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        return configuration
    }

    /// Runs `body` in a deferred transaction on `database` with a deadline of ``timeLimit`` for
    /// its statements and lock waits.
    private static func bounded<T>(_ database: DatabaseQueue, path: String, _ body: (Database) throws -> T) throws -> T {
        let deadline = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        defer { deadline.deallocate() }
        deadline.pointee = monotonicNanoseconds() + UInt64(timeLimit.components.seconds) * 1_000_000_000
        do {
            return try database.inDatabase { db in
                let connection = db.sqliteConnection
                sqlite3_progress_handler(connection, 1000, { context in
                    monotonicNanoseconds() > context!.assumingMemoryBound(to: UInt64.self).pointee ? 1 : 0
                }, deadline)
                sqlite3_busy_handler(connection, { context, _ in
                    guard monotonicNanoseconds() <= context!.assumingMemoryBound(to: UInt64.self).pointee else { return 0 }
                    usleep(5000)
                    return 1
                }, deadline)
                defer {
                    sqlite3_progress_handler(connection, 0, nil, nil)
                    sqlite3_busy_timeout(connection, Int32(timeLimit.components.seconds * 1000))
                }
                var result: T?
                try db.inTransaction(.deferred) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_INTERRUPT || error.resultCode == .SQLITE_BUSY {
            throw TimedOut(path: path)
        }
    }

}

/// `CLOCK_MONOTONIC` in nanoseconds (a free function: SQLite's C callbacks call it).
private func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
