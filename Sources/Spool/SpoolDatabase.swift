#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB

/// How the programs open a SQLite database kept in the spool (the status index, the
/// allocator's store): WAL via a GRDB pool, a busy timeout for writers in other processes, the
/// file private to the spool's group, and the schema migrated by exactly one process at a time.
public enum SpoolDatabase {
    /// Opens the database at `path`. Read-write opening creates the file `0660` (SQLite would
    /// create it `0644` and give its `-wal`/`-shm` files the same mode) and runs `migrator` under
    /// an `flock` on `<path>.lock`, so that processes starting together do not both create the
    /// schema. Read-only opening requires an existing database and migrates nothing.
    ///
    /// - Throws: ``SpoolError`` when the lock cannot be taken; GRDB's `DatabaseError` from SQLite.
    public static func open(path: String, label: String, readOnly: Bool = false,
                            migrator: DatabaseMigrator) throws -> DatabasePool {
        var configuration = Configuration()
        configuration.readonly = readOnly
        configuration.busyMode = .timeout(30)
        configuration.label = label
        if readOnly { return try DatabasePool(path: path, configuration: configuration) }
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o660)
        if fd >= 0 { close(fd) }
        let database = try DatabasePool(path: path, configuration: configuration)
        try withFileLock(path + ".lock") { try migrator.migrate(database) }
        return database
    }

    /// Runs `body` holding an exclusive `flock(2)` on `path` (created `0660` if missing).
    static func withFileLock<T>(_ path: String, _ body: () throws -> T) throws -> T {
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o660)
        guard fd >= 0 else {
            throw SpoolError.system(operation: "open lock", path: path, SystemCallError(call: .open, errno: errno))
        }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw SpoolError.system(operation: "lock", path: path, SystemCallError(call: .lock, errno: errno))
            }
        }
        return try body()
    }
}
