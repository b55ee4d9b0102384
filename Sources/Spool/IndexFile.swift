#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import Logging
import Synchronization

/// What a self-healing ``StatusIndex`` needs to repair itself: the journal it projects and the
/// spool's `corrupt/` quarantine.
struct IndexRecovery: Sendable {
    /// Recreates the index's directory, should it have been removed.
    let makeDirectory: @Sendable () throws -> Void
    let journal: Journal
    let quarantine: Directory
    let logger: Logger
}

/// The file behind a self-healing ``StatusIndex``: opens it when first used, notices when the
/// file at its path was replaced or deleted (one `stat` per use, compared with the device and
/// inode it opened) and reopens it, and replaces an unusable file with one rebuilt from the
/// journal.
///
/// Unusable means missing, not a database (`SQLITE_NOTADB`), corrupt (`SQLITE_CORRUPT`), without
/// the schema, or never projected (a zero-length file, say); I/O, permission and locking errors
/// are thrown as they are. An unusable file is moved to `corrupt/` (with its `-wal`), then the
/// rebuilt file is renamed over the path.
///
/// Replacing a WAL database under running processes needs care, and `<path>.lock` provides it:
/// every use holds a shared `flock` on it (opening, reopening and the query itself), and a
/// replacement holds it exclusively while it removes the old `-wal`/`-shm` and renames the new
/// file (fully checkpointed, fsynced) into place, then fsyncs the directory. So no process
/// opens the new file with the old file's WAL, and none is in the middle of a query on the old
/// file when it goes; each notices the new inode on its next use. ``SpoolDatabase`` makes closing
/// the old connections leave the new `-wal`/`-shm` alone.
final class IndexFile: Sendable {
    struct Identity: Equatable, Sendable {
        let device: UInt64
        let inode: UInt64
    }

    /// Why the file at the path cannot be used.
    enum Problem: Error, Sendable, CustomStringConvertible {
        case missing
        case unusable(Identity, String)

        var description: String {
            switch self {
            case .missing: return "missing"
            case .unusable(_, let reason): return reason
            }
        }
    }

    /// The connections to the file at the path: a read-only one for queries and a writable one,
    /// each opened at its first use (the first of them checks that the file is a whole index).
    /// Reading never writes the file: a read-only connection neither switches the journal mode
    /// nor (GRDB issue 102) writes a table to make a WAL, and it cannot checkpoint on close.
    private struct Opened: Sendable {
        let identity: Identity
        var reader: DatabaseQueue?
        var writer: DatabaseQueue?
    }

    let path: String
    let recovery: IndexRecovery
    /// Read-only use (a restricted process): read-only connections, and an unusable file is
    /// reported (thrown), never repaired, so the process writes nothing and takes no lock but the
    /// shared one.
    let readOnly: Bool
    private let migrator: @Sendable () -> DatabaseMigrator
    private let opened = Mutex<Opened?>(nil)
    private var lockPath: String { path + ".lock" }

    /// How long a replacement waits for the exclusive lock. Every use holds the shared lock, and
    /// a reader its caller stopped (`SIGSTOP`) holds it for as long as it stays stopped: a
    /// replacement (run inside a daemon's tick) gives up after this long rather than hang.
    static let exclusiveLockTimeout: Duration = .seconds(5)

    init(path: String, recovery: IndexRecovery, readOnly: Bool = false,
         migrator: @escaping @Sendable () -> DatabaseMigrator) {
        self.path = path
        self.recovery = recovery
        self.readOnly = readOnly
        self.migrator = migrator
    }

    /// Runs `body` on the open database, holding the shared lock; reopens a replaced file and
    /// repairs an unusable one first (at most three times, then throws
    /// ``SpoolError/corrupt(path:reason:)``). `body` may run more than once. With `writing`,
    /// `body` gets the writable connection (opened now if it is not yet; refused for a
    /// read-only index); otherwise the read-only one, and nothing is written to the file
    /// unless it must be repaired.
    func withDatabase<T>(writing: Bool, _ body: (any DatabaseWriter) throws -> T) throws -> T {
        if writing, readOnly {
            throw SpoolError.system(operation: "write", path: path, SystemCallError(call: .open, errno: EROFS))
        }
        if readOnly, ProcessRights.isRestricted {
            // SQLite's read-only connection creates a missing `-wal`/`-shm`, and the shared lock a
            // missing lock file: in a setgid spoolctl they would belong to the caller. Until a
            // writer has made them, the caller reads the journal instead (every reader's fallback).
            var status = stat()
            for suffix in [".lock", "-wal", "-shm"] where lstat(path + suffix, &status) != 0 && errno == ENOENT {
                throw SpoolError.corrupt(path: path, reason: "status index not ready for a read-only user: no \(suffix) file yet")
            }
        }
        var repairs = 0
        while true {
            if !readOnly, repairs == 0, access((path as NSString).deletingLastPathComponent, F_OK) != 0, errno == ENOENT {
                try recovery.makeDirectory()  // the index directory itself was removed
            }
            let outcome: Result<T, Problem> = try FileLock.holding(lockPath, exclusive: false) {
                switch try current(writing: writing) {
                case .failure(let problem): return .failure(problem)
                case .success(let (database, identity)):
                    do {
                        let value = try body(database)
                        if writing { SpoolDatabase.truncateWALIfLarge(database, path: path) }
                        return .success(value)
                    } catch where SpoolDatabase.isDamage(error) {
                        return .failure(.unusable(identity, "\(error)"))
                    }
                }
            }
            let problem: Problem
            switch outcome {
            case .success(let value): return value
            case .failure(let found): problem = found
            }
            if readOnly { throw SpoolError.corrupt(path: path, reason: "status index unusable (not repaired by a read-only user): \(problem)") }
            guard repairs < 3 else { throw SpoolError.corrupt(path: path, reason: "status index still unusable after 3 repairs: \(problem)") }
            repairs += 1
            try replace(problem)
        }
    }

    /// The connection for the file now at the path (under the shared lock): the read-only one,
    /// or with `writing` the writable one.
    private func current(writing: Bool) throws -> Result<(any DatabaseWriter, Identity), Problem> {
        let identity = try Self.identity(of: path)
        return try opened.withLock { opened in
            if opened?.identity != identity { opened = nil }  // replaced or deleted: close the old file (its WAL persists; see above)
            guard let identity else { return .failure(.missing) }
            if let connection = writing ? opened?.writer : opened?.reader { return .success((connection, identity)) }
            do {
                // The writer is a queue with the default journal mode: the file was built in WAL
                // mode, which it keeps, where a pool would make sure of it by writing (GRDB
                // issue 102). A write-only use (a submit) opens no reader.
                let connection = try DatabaseQueue(path: path, configuration: SpoolDatabase.configuration(
                    label: "status-index", readOnly: !writing, projection: true))
                if opened == nil {
                    // First use of this file: it must be a whole index.
                    let migrator = migrator()
                    let complete = try connection.read { db in
                        try migrator.hasCompletedMigrations(db)
                            && Row.fetchOne(db, sql: "SELECT 1 FROM projection WHERE id = 1") != nil
                    }
                    guard complete else { return .failure(.unusable(identity, "no schema, or never projected")) }
                }
                var current = opened ?? Opened(identity: identity)
                if writing { current.writer = connection } else { current.reader = connection }
                opened = current
                return .success((connection, identity))
            } catch where SpoolDatabase.isDamage(error) {
                return .failure(.unusable(identity, "\(error)"))
            }
        }
    }

    /// Why the file now at the path cannot be used, or nil if it can.
    func probe() throws -> Problem? {
        try FileLock.holding(lockPath, exclusive: false) {
            if case .failure(let problem) = try current(writing: false) { return problem }
            return nil
        }
    }

    /// Builds a new index from the journal and renames it over the path: if `force` (an
    /// explicit rebuild), whatever is there; otherwise only if the path still holds the file
    /// found unusable (else another process got there first). An unusable file (per `problem`)
    /// is quarantined first. Returns the rows built and the damage the journal reader met.
    @discardableResult
    func replace(_ problem: Problem?, force: Bool = false) throws -> (rows: Int, damage: [JournalDamage]) {
        switch problem {
        case nil: break
        case .missing?:
            recovery.logger.debug("no status index; building it from the journal", metadata: ["index": "\(path)"])
        case .unusable(_, let reason)?:
            recovery.logger.warning("status index unusable; rebuilding it from the journal",
                                    metadata: ["index": "\(path)", "problem": "\(reason)"])
        }
        try recovery.makeDirectory()
        let temporary = path + ".new-" + ItemID.generate().rawValue
        defer { for suffix in ["", "-wal", "-shm", "-journal"] { unlink(temporary + suffix) } }
        // A retention pass of a compaction that ran while this build read the journal may have
        // dropped entities the build saw part of (an older event, read before the drop): then
        // build again (see docs/spool-format.md, "Compaction"; at most 3 times).
        var built: (rows: Int, damage: [JournalDamage])
        var builds = 0
        while true {
            let stamp = recovery.journal.retentionStamp()
            built = try build(at: temporary)
            builds += 1
            let placed = try FileLock.holding(lockPath, exclusive: true, timeout: Self.exclusiveLockTimeout) { () throws -> Bool in
                guard builds >= 3 || recovery.journal.retentionStamp() == stamp else { return false }
                let now = try Self.identity(of: path)
                switch problem {
                case _ where force: break
                case nil: break
                case .missing?: guard now == nil else { return true }
                case .unusable(let bad, _)?: guard now == bad else { return true }
                }
                // The old WAL must never meet the new file: remove it (and the shared-memory index)
                // before the rename. A crash in between leaves the old file without its WAL: stale
                // but consistent, and catching up brings it forward.
                if case .unusable(let bad, _)? = problem, now == bad {
                    let name = "status-index." + ItemID.generate().rawValue
                    try quarantine(path + "-wal", as: name + ".sqlite-wal")
                    try quarantine(path, as: name + ".sqlite")
                    recovery.logger.warning("quarantined the unusable status index", metadata: ["as": "corrupt/\(name).sqlite"])
                }
                for suffix in ["-wal", "-shm"] where unlink(path + suffix) != 0 && errno != ENOENT {
                    throw SpoolError.system(operation: "remove", path: path + suffix, SystemCallError(call: .unlink, errno: errno))
                }
                guard rename(temporary, path) == 0 else {
                    throw SpoolError.system(operation: "rename", path: path, SystemCallError(call: .rename, errno: errno))
                }
                try Self.syncDirectory(of: path)
                removeAbandonedBuilds()
                return true
            }
            if placed { break }
            for suffix in ["", "-wal", "-shm", "-journal"] { unlink(temporary + suffix) }
        }
        opened.withLock { $0 = nil }
        return built
    }

    /// A complete index at `temporary`: schema, the whole journal projected, WAL checkpointed
    /// away, file fsynced. It is in WAL mode already, so openers never switch modes.
    private func build(at temporary: String) throws -> (rows: Int, damage: [JournalDamage]) {
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o660)
        guard fd >= 0 else {
            throw SpoolError.system(operation: "create", path: temporary, SystemCallError(call: .open, errno: errno))
        }
        close(fd)
        // Built without a rollback journal and without syncs, in a large page cache: the file is
        // nobody's until it is complete, synced and renamed into place, and a crash before that
        // leaves only a partial build to remove. Switched to WAL at the end, so openers never
        // switch modes.
        // Keys are inserted after their row: the foreign key needs no check. The secondary
        // indexes are created once the tables are full (see ``StatusIndex/secondaryIndexes``).
        var configuration = SpoolDatabase.configuration(label: "status-index-rebuild")
        configuration.foreignKeysEnabled = false
        let queue = try DatabaseQueue(path: temporary, configuration: configuration)
        try queue.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = OFF")
            try db.execute(sql: "PRAGMA synchronous = OFF; PRAGMA cache_size = -262144")
        }
        try migrator().migrate(queue)
        let built = try queue.write { db in
            for index in StatusIndex.secondaryIndexes { try db.execute(sql: "DROP INDEX \(index.name)") }
            let damage = try StatusIndex.project(recovery.journal, into: db)
            for index in StatusIndex.secondaryIndexes { try db.execute(sql: index.sql) }
            return (rows: try Int.fetchOne(db, sql: "SELECT count(*) FROM entity") ?? 0, damage: damage)
        }
        try queue.writeWithoutTransaction { db in
            guard try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") == "wal" else {
                throw SpoolError.corrupt(path: temporary, reason: "could not switch the rebuilt index to WAL mode")
            }
            _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
        try queue.close()
        let file = Glibc.open(temporary, O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { throw SpoolError.system(operation: "open", path: temporary, SystemCallError(call: .open, errno: errno)) }
        defer { close(file) }
        guard fsync(file) == 0 else {
            throw SpoolError.system(operation: "sync", path: temporary, SystemCallError(call: .fsync, errno: errno))
        }
        return built
    }

    /// Removes partial builds (`<path>.new-*`) a crash left behind over an hour ago.
    private func removeAbandonedBuilds() {
        let directory = (path as NSString).deletingLastPathComponent
        let prefix = (path as NSString).lastPathComponent + ".new-"
        let hourAgo = Date().addingTimeInterval(-3600)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(prefix) {
            let file = directory + "/" + name
            guard let modified = (try? FileManager.default.attributesOfItem(atPath: file))?[.modificationDate] as? Date,
                  modified < hourAgo else { continue }
            unlink(file)
        }
    }

    /// Moves `source` (if it exists) into `corrupt/` as `name`.
    private func quarantine(_ source: String, as name: String) throws {
        if renameat(AT_FDCWD, source, recovery.quarantine.descriptor, name) != 0 {
            guard errno == ENOENT else {
                throw SpoolError.system(operation: "quarantine", path: source, SystemCallError(call: .rename, errno: errno))
            }
            return
        }
        try? recovery.quarantine.sync()
    }

    static func identity(of path: String) throws -> Identity? {
        var status = stat()
        guard stat(path, &status) == 0 else {
            if errno == ENOENT { return nil }
            throw SpoolError.system(operation: "stat", path: path, SystemCallError(call: .status, errno: errno))
        }
        return Identity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    private static func syncDirectory(of path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let fd = Glibc.open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SpoolError.system(operation: "open", path: directory, SystemCallError(call: .open, errno: errno)) }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw SpoolError.system(operation: "sync", path: directory, SystemCallError(call: .fsync, errno: errno))
        }
    }
}
