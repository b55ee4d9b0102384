#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import GRDBSQLite

/// How the programs open a SQLite database kept in the spool (the status index, a program's own
/// store): WAL via a GRDB pool, a busy timeout for writers in other processes, the
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
    static func configuration(label: String, readOnly: Bool = false) -> Configuration {
        var configuration = Configuration()
        configuration.readonly = readOnly
        configuration.busyMode = .timeout(30)
        configuration.label = label
        configuration.prepareDatabase { db in
            var persist: Int32 = 1
            _ = sqlite3_file_control(db.sqliteConnection, "main", SQLITE_FCNTL_PERSIST_WAL, &persist)
            try db.execute(sql: "PRAGMA journal_size_limit = \(walSizeLimit)")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(autoCheckpointPages)")
        }
        return configuration
    }

    /// Checkpoints `database`'s WAL into the main file and truncates the WAL to zero bytes
    /// (`wal_checkpoint(TRUNCATE)`): waits (busy timeout) for readers of older snapshots.
    public static func checkpoint(_ database: DatabasePool) throws {
        try database.writeWithoutTransaction { db in _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

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
