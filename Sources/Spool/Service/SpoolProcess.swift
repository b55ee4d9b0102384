#if canImport(Glibc)
import Glibc
#endif

/// Process-wide settings every program of the system applies first.
public enum SpoolProcess {
    /// Sets the file-creation mask to `007`: files and directories the programs create are
    /// readable and writable by the spool's group (which owns the spool and which `spoolctl`
    /// runs setgid to) and by nobody else. See `docs/operations.md` for owners and modes.
    /// Also ignores `SIGPIPE`: a hook that exits without reading its input must cost an
    /// `EPIPE` on the write, not the daemon.
    public static func prepare() {
        umask(0o007)
        signal(SIGPIPE, SIG_IGN)
    }

    /// Creates an empty file at `path` with mode `0660` if none exists, so that SQLite (which
    /// creates databases `0644` and gives `-wal`/`-shm` files the database's mode) keeps the
    /// index and the allocator's store group-writable and private.
    public static func precreatePrivateFile(_ path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o660)
        if fd >= 0 { close(fd) }
    }

    /// Runs `body` holding an exclusive `flock(2)` on `path` (created `0660` if missing): for
    /// one-time work several processes may race to do, such as a schema migration.
    public static func withFileLock<T>(_ path: String, _ body: () throws -> T) throws -> T {
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o660)
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
