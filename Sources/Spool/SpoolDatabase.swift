#if canImport(Glibc)
import Glibc
#endif
import CSQLiteShim
import Foundation
import GRDB
import GRDBSQLite

/// How the programs open a SQLite database kept in the spool (the status index, a program's own
/// store): WAL via a GRDB pool, commits synced (`synchronous=FULL`, on the writer too, where
/// GRDB would set `NORMAL`), a busy timeout for writers in other processes, the
/// file private to the spool's group, the schema migrated by exactly one process at a time, and
/// the WAL file kept small.
///
/// WAL size: every connection sets `journal_size_limit` (``walSizeLimit``) and a low
/// `wal_autocheckpoint` (``autoCheckpointPages``), so after each automatic checkpoint the WAL is
/// reset and truncated to the limit; ``checkpoint(_:)`` truncates it to zero on demand
/// (`reconcile`, after an index rebuild). Every connection also sets `SQLITE_FCNTL_PERSIST_WAL`:
/// closing the last connection then never deletes `-wal`/`-shm` by name, which matters when a
/// file is replaced under a running process (see ``StatusIndex``): the old connection's close
/// must not unlink the new file's WAL.
public enum SpoolDatabase {
    /// The size (bytes) a WAL file is truncated to after a checkpoint resets it.
    public static let walSizeLimit = 256 * 1024
    /// Pages written to the WAL before a connection runs an automatic (passive) checkpoint.
    public static let autoCheckpointPages = 128

    /// Opens the database at `path`. Read-write opening creates the file `0660` (SQLite would
    /// create it `0644` and give its `-wal`/`-shm` files the same mode), then opens the pool
    /// (switching to WAL) and runs `migrator`, all under an `flock` on `<path>.lock`, so that
    /// processes starting together neither race to switch the journal mode nor both create the
    /// schema. Read-only opening requires an existing database and migrates nothing. `check`
    /// runs first on an existing non-empty file, through a plain connection that does not
    /// change the journal mode: the pool (GRDB writes a dummy table when it finds the WAL empty)
    /// and the migrator write to the file, and a check that throws must leave it as it was.
    ///
    /// With a `check` (a source of truth, not a projection), a missing file is created whole:
    /// built and migrated as `<path>.new`, synced, and renamed into place, so the path never
    /// holds an empty file that the programs made; an existing zero-length file is therefore
    /// damage (it would otherwise be taken for a new, empty database: every decision lost) and
    /// is reported as `SQLITE_NOTADB`.
    ///
    /// - Throws: ``SpoolError`` when the lock cannot be taken; GRDB's `DatabaseError` from SQLite;
    ///   what `check` throws.
    public static func open(path: String, label: String, readOnly: Bool = false,
                            migrator: DatabaseMigrator, check: ((any DatabaseReader) throws -> Void)? = nil) throws -> DatabasePool {
        let configuration = configuration(label: label, readOnly: readOnly)
        if readOnly { return try DatabasePool(path: path, configuration: configuration) }
        return try FileLock.holding(path + ".lock", exclusive: true) {
            var status = stat()
            if check != nil {
                if lstat(path, &status) != 0, errno == ENOENT { try create(path: path, migrator: migrator, configuration: configuration) }
                if stat(path, &status) == 0, status.st_size == 0 {
                    throw DatabaseError(resultCode: .SQLITE_NOTADB, message: "zero-length file (a store is never empty once created)")
                }
            }
            let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o660)
            if fd >= 0 { close(fd) }
            if let check, stat(path, &status) == 0, status.st_size > 0 {
                try check(try DatabaseQueue(path: path, configuration: configuration))
            }
            let database = try DatabasePool(path: path, configuration: configuration)
            // GRDB sets `synchronous=NORMAL` on a pool's writer (its WAL set-up): commits would
            // then reach the disk only at the next checkpoint, and a power loss could take back
            // a decision already acted upon. The spool's databases are durable at commit.
            try database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try migrator.migrate(database)
            return database
        }
    }

    /// Creates the database at `path` whole: migrated in `<path>.new` (mode `0660`), synced,
    /// renamed into place, the directory synced. Called under the migration lock.
    private static func create(path: String, migrator: DatabaseMigrator, configuration: Configuration) throws {
        let staged = path + ".new"
        for leftover in [staged, staged + "-journal"] { unlink(leftover) }
        let fd = Glibc.open(staged, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o660)
        guard fd >= 0 else { throw SpoolError.system(operation: "create", path: staged, SystemCallError(call: .open, errno: errno)) }
        close(fd)
        do {
            let queue = try DatabaseQueue(path: staged, configuration: configuration)
            try migrator.migrate(queue)
            try queue.close()
        }
        let file = Glibc.open(staged, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard file >= 0, fsync(file) == 0 else {
            let error = errno
            if file >= 0 { close(file) }
            throw SpoolError.system(operation: "sync", path: staged, SystemCallError(call: .fsync, errno: error))
        }
        close(file)
        guard rename(staged, path) == 0 else { throw SpoolError.system(operation: "rename", path: staged, SystemCallError(call: .rename, errno: errno)) }
        let directory = Glibc.open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }

    /// The GRDB configuration every spool database uses (see the type's description).
    ///
    /// A `projection` (the status index: rebuilt from the journal, never a source of truth) is
    /// opened for speed where durability is the journal's job: its commits are not synced
    /// (`synchronous=NORMAL`: in WAL mode a power loss may drop the last commits, never leave
    /// the file inconsistent, and the stored journal position drops with the rows it covers),
    /// and closing its last connection does not checkpoint (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`):
    /// a short-lived `spoolctl` then neither syncs nor writes the database file on exit; the
    /// automatic checkpoints (every ``autoCheckpointPages``) keep the WAL bounded.
    static func configuration(label: String, readOnly: Bool = false, projection: Bool = false) -> Configuration {
        var configuration = Configuration()
        configuration.readonly = readOnly
        configuration.busyMode = .timeout(Double(busyTimeoutMilliseconds) / 1000)
        configuration.label = label
        configuration.prepareDatabase { db in
            var persist: Int32 = 1
            _ = sqlite3_file_control(db.sqliteConnection, "main", SQLITE_FCNTL_PERSIST_WAL, &persist)
            if projection {
                let result = spool_sqlite_skip_checkpoint_on_close(db.sqliteConnection)
                guard result == SQLITE_OK else { throw DatabaseError(resultCode: ResultCode(rawValue: result), message: "sqlite3_db_config(NO_CKPT_ON_CLOSE)") }
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            try db.execute(sql: "PRAGMA journal_size_limit = \(walSizeLimit)")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(autoCheckpointPages)")
        }
        return configuration
    }

    /// Checkpoints `database`'s WAL into the main file and truncates the WAL to zero bytes
    /// (`wal_checkpoint(TRUNCATE)`): waits (busy timeout) for readers of older snapshots.
    public static func checkpoint(_ database: any DatabaseWriter) throws {
        try database.writeWithoutTransaction { db in _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// For a projection (whose connections do not checkpoint when they close): checkpoints the
    /// WAL of the database at `path` into the file and truncates it to zero bytes once it holds
    /// ``walSizeLimit`` bytes, without waiting for readers (`SQLITE_BUSY` leaves it for the next
    /// write). Without it the WAL would only grow when no two processes overlap: a process that
    /// opens the database first rebuilds the WAL's index from the WAL and forgets what earlier
    /// checkpoints copied, so the WAL is never restarted. Costs one checkpoint (two syncs) per
    /// ``walSizeLimit`` bytes written, instead of one at every process's exit.
    static func truncateWALIfLarge(_ database: any DatabaseWriter, path: String) {
        var status = stat()
        guard stat(path + "-wal", &status) == 0, status.st_size >= walSizeLimit else { return }
        database.writeWithoutTransaction { db in
            sqlite3_busy_timeout(db.sqliteConnection, 0)
            defer { sqlite3_busy_timeout(db.sqliteConnection, busyTimeoutMilliseconds) }
            var logFrames: Int32 = 0
            var checkpointed: Int32 = 0
            _ = sqlite3_wal_checkpoint_v2(db.sqliteConnection, nil, SQLITE_CHECKPOINT_TRUNCATE, &logFrames, &checkpointed)
        }
    }

    /// How long a connection waits for another process's lock (`busy_timeout`).
    static let busyTimeoutMilliseconds: Int32 = 30_000

    /// True when `error` says the file is not a database or is corrupt (as opposed to an I/O,
    /// permission or locking failure, which a retry may cure).
    static func isDamage(_ error: any Error) -> Bool {
        if error is RowDecodingError || error is StoredContentDamage { return true }  // a stored value no program wrote
        guard let error = error as? DatabaseError else { return false }
        return error.resultCode == .SQLITE_NOTADB || error.resultCode == .SQLITE_CORRUPT
    }

    /// True when `error` is a transient SQLite condition (`SQLITE_BUSY`, `SQLITE_LOCKED`).
    public static func isTransient(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        return error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED
    }
}

/// `flock(2)` on a lock file (created `0660` if missing; opened read-only where it cannot be
/// written). Each use opens its own descriptor, so two threads of one process hold independent
/// locks.
enum FileLock {
    /// Runs `body` holding the lock on `path`: shared, or exclusive. With a `timeout`, the lock
    /// is polled (`LOCK_NB`) for at most that long, then ``SpoolError/system(operation:path:_:)`` with `EWOULDBLOCK` is thrown: for a
    /// lock that a process which may be stopped (`SIGSTOP`) could hold.
    static func holding<T>(_ path: String, exclusive: Bool, timeout: Duration? = nil, _ body: () throws -> T) throws -> T {
        var fd = Glibc.open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o660)
        if fd < 0, errno == EACCES || errno == EROFS { fd = Glibc.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
        guard fd >= 0 else {
            throw SpoolError.system(operation: "open lock", path: path, SystemCallError(call: .open, errno: errno))
        }
        defer { close(fd) }
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | (deadline == nil ? 0 : LOCK_NB)) != 0 {
            if errno == EWOULDBLOCK, let deadline {
                guard ContinuousClock.now < deadline else {
                    throw SpoolError.system(operation: "lock (gave up waiting)", path: path, SystemCallError(call: .lock, errno: EWOULDBLOCK))
                }
                usleep(10_000)
                continue
            }
            guard errno == EINTR else {
                throw SpoolError.system(operation: "lock", path: path, SystemCallError(call: .lock, errno: errno))
            }
        }
        return try body()
    }
}
