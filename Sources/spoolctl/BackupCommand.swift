#if canImport(Glibc)
import Glibc
#endif
import Allocator
import ArgumentParser
import DaemonRuntime
import Foundation
import Intake
import Rentals
import Spool

/// `spoolctl backup DIR`: a consistent copy of a running spool (docs/operations.md, "Backup and
/// restore").
///
/// A plain copy of a live spool (`cp -a`) is not one: the allocator store's `state.sqlite` and
/// its `-wal` copied at different moments can be torn (a checkpoint between the two writes pages
/// into the file being read), and a request the allocator decides and removes from its queue
/// after the queue was copied but before the store was can be in neither. The order here makes
/// every request acknowledged before the backup started present in the copy:
///
/// 1. the queues (`ready/`, `active/`, `dead/`, then `ready/` again for an item a retry or a
///    reclaim moved back meanwhile; one file per item id, the last seen), then every other
///    directory except `index/` (a projection), `tmp/`, `corrupt/` and `heartbeat/`;
/// 2. the journal, holding `journal/compact.lock` so that no compaction replaces segments
///    meanwhile (appenders are never stopped: a record being appended is a torn tail in the
///    copy, cut at the next append as after a crash); listed again until no segment is new;
/// 3. the allocator store last, with SQLite's online backup API (one snapshot).
///
/// An acknowledged request is then in a queue copy, or was claimed before its queue was copied
/// (so its `received` status is in the journal copy, and `reconcile` queues its command again
/// if the store copy holds no decision), or decided before the store snapshot. Files are
/// copied with their modes (and owners, as root); the copy is built in
/// `DIR.partial-<pid>` with a `MANIFEST` (`<crc32> <bytes> <path>` per file) and renamed to
/// DIR at the end, after one `sync(2)` made every file and directory of it durable (an `fsync` per file took 3 to 5 times as long as `cp -a` for a spool of 10,000
/// files): DIR exists only complete.
struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the running spool consistently into a new directory (restore: cp -a, then reconcile --rebuild-index; see docs/operations.md).",
        discussion: """
            Only for root and the spool's own user (not through the setgid bit). DIR must not exist. Exit 0 done, \
            73 DIR exists or cannot be created, 75 a compaction is running or the disk is full (try again), 65 the allocator \
            store is damaged, 74 I/O error; nothing is left at DIR on failure.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The directory to create with the copy.")
    var directory: String

    func run() throws {
        // Not even for operators in restricted mode: the copy would give them every file of the
        // group-private spool, and a directory they control could be swapped for a link into
        // the spool while the setgid process writes below it.
        guard !SpoolProcess.isRestricted else {
            throw Failure(IntakeError(.notPermitted, "only root or the spool's own user may back up the spool"), json: global.json)
        }
        let (spool, _) = try openSpool(global)
        let target = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        var status = stat()
        guard lstat(target, &status) != 0 else {
            throw Failure(IntakeError(.cannotCreate, "\(target.echoed) exists; give a new directory"), json: global.json)
        }
        let staging = "\(target).partial-\(getpid())"
        guard mkdir(staging, 0o700) == 0 else {
            throw Failure(IntakeError(.cannotCreate, "cannot create \(staging.echoed): \(errnoDescription(errno))"), json: global.json)
        }
        var copier = BackupCopier(source: spool.path, destination: staging)
        do {
            try copier.copyAll(spool: spool)
            try copier.writeManifest()
            // The copy's root gets the spool root's owner and mode, so that `cp -a DIR/. ROOT/`
            // restores them too.
            if lstat(spool.path, &status) == 0 {
                if geteuid() == 0 { _ = chown(staging, status.st_uid, status.st_gid) }
                chmod(staging, status.st_mode & 0o7777)
            }
            guard rename(staging, target) == 0 else { throw BackupError("rename \(staging) to \(target): \(errnoDescription(errno))") }
            copier.syncDirectory((target as NSString).deletingLastPathComponent.isEmpty ? "." : (target as NSString).deletingLastPathComponent)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw Failure(Self.mapping(error), json: global.json)
        }
        if global.json {
            try printJSONObject(["directory": target, "files": copier.entries.count, "bytes": copier.entries.reduce(0) { $0 + $1.size },
                                 "queue_items": copier.queueItems, "journal_segments": copier.journalSegments])
        } else {
            try emit("backup of \(spool.path) in \(target): \(copier.entries.count) files, \(copier.entries.reduce(0) { $0 + $1.size }) bytes "
                     + "(\(copier.queueItems) queue items, \(copier.journalSegments) journal segments, the allocator store)")
        }
    }

    static func mapping(_ error: any Error) -> IntakeError {
        if let busy = error as? BackupError, busy.busy { return IntakeError(.tryAgain, "backup: \(busy.message)", retryAfterSeconds: 60) }
        if let failure = error as? BackupError { return IntakeError(.ioError, "backup: \(failure.message)") }
        if DatabaseDamage.isDamage(error) {
            return IntakeError(.badData, "backup: the allocator store is damaged (\(error)); no backup taken: see docs/operations.md, \"A damaged allocator store\"")
        }
        return IntakeError.mapping(error, doing: "backup")
    }
}

/// A failure of the backup; `busy` (exit 75) when a compaction holds the journal or the
/// backup's file system is full (a failure of a system call reads `errno` here for that).
struct BackupError: Error, CustomStringConvertible {
    let message: String
    var busy = false
    init(_ message: String, busy: Bool = false) {
        self.message = message
        self.busy = busy || errno == ENOSPC || errno == EDQUOT
    }
    var description: String { message }
}

/// Copies files of the spool below `source` to the same relative paths below `destination`.
struct BackupCopier {
    let source: String
    let destination: String
    /// Every file copied: relative path, size, CRC-32.
    private(set) var entries: [(path: String, size: Int, crc: UInt32)] = []
    private(set) var queueItems = 0
    private(set) var journalSegments = 0
    private let asRoot = geteuid() == 0

    init(source: String, destination: String) {
        self.source = source
        self.destination = destination
    }

    /// The three steps of ``Backup``, in their order.
    mutating func copyAll(spool: Spool) throws {
        _ = try copyFile("format")
        for queue in names(in: "queues") { try copyQueue("queues/\(queue)") }
        for name in names(in: "") where !["format", "queues", "journal", "allocator", "index", "tmp", "corrupt", "heartbeat"].contains(name) {
            try copyTree(name)
        }
        try copyJournal()
        try makeDirectory("allocator")
        guard lstat("\(source)/allocator/state.sqlite", &scratch) == 0 else { return }  // nothing decided yet
        let store = try AllocatorStore(spool: spool, readOnly: true)
        let path = "\(destination)/allocator/state.sqlite"
        try store.backup(to: path)
        try record("allocator/state.sqlite", copiedAt: path)
        if asRoot, lstat("\(source)/allocator/state.sqlite", &scratch) == 0 { _ = chown(path, scratch.st_uid, scratch.st_gid) }
        chmod(path, 0o660)
        syncDirectory("\(destination)/allocator")
    }

    private var scratch = stat()

    /// The queue's items: one file per item id (the last state seen), `dead/*.error` beside.
    private mutating func copyQueue(_ queue: String) throws {
        var copied: [String: String] = [:]  // item id -> relative path of its copy
        let ready = names(in: "\(queue)/ready").map { "\(queue)/ready/\($0)" }
        for pass in [ready, ["\(queue)/active"], ["\(queue)/dead"], ready] {
            for directory in pass {
                try makeDirectory(directory)
                for name in names(in: directory) {
                    let path = "\(directory)/\(name)"
                    let id = String(name.prefix { $0 != "." })
                    if name.hasSuffix(".error") { _ = try copyFile(path); continue }
                    if let earlier = copied[id] {
                        if earlier == path { continue }
                        guard try copyFile(path) else { continue }  // gone meanwhile: keep the earlier copy
                        unlink("\(destination)/\(earlier)")
                        entries.removeAll { $0.path == earlier }
                        copied[id] = path
                    } else if try copyFile(path) {
                        copied[id] = path
                    }
                }
            }
        }
        queueItems += copied.count
    }

    /// The journal's segments under `journal/compact.lock`; listed again until nothing is new.
    private mutating func copyJournal() throws {
        try makeDirectory("journal")
        let lockPath = "\(source)/journal/compact.lock"
        let lock = open(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o660)
        guard lock >= 0 else { throw BackupError("open \(lockPath): \(errnoDescription(errno))") }
        defer { close(lock) }
        var waited = 0
        while flock(lock, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, waited < 100 else {
                throw BackupError("a compaction of the journal is running (journal/compact.lock is held); try again when it is done", busy: true)
            }
            waited += 1
            usleep(100_000)
        }
        var copied: Set<String> = []
        while true {
            let segments = names(in: "journal").filter { $0.hasSuffix(".log") || $0.hasSuffix(".log.z") }.filter { !copied.contains($0) }
            guard !segments.isEmpty else { break }
            for name in segments.sorted() {
                copied.insert(name)
                if try copyFile("journal/\(name)") { journalSegments += 1 }
            }
        }
    }

    /// Everything below `relative`, recursively (regular files and directories; nothing else).
    private mutating func copyTree(_ relative: String) throws {
        guard lstat("\(source)/\(relative)", &scratch) == 0 else { return }
        if (scratch.st_mode & S_IFMT) == S_IFDIR {
            try makeDirectory(relative)
            for name in names(in: relative) { try copyTree("\(relative)/\(name)") }
        } else if (scratch.st_mode & S_IFMT) == S_IFREG {
            _ = try copyFile(relative)
        }
    }

    /// The names in the source directory `relative` (none if it is gone or unreadable).
    private func names(in relative: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: relative.isEmpty ? source : "\(source)/\(relative)")) ?? []).sorted()
    }

    /// Creates `relative` below the destination (and its parents) with the source's mode.
    private mutating func makeDirectory(_ relative: String) throws {
        var partial = ""
        for component in relative.split(separator: "/") {
            partial += partial.isEmpty ? String(component) : "/\(component)"
            let path = "\(destination)/\(partial)"
            if lstat(path, &scratch) == 0 { continue }
            guard mkdir(path, 0o700) == 0 else { throw BackupError("mkdir \(path): \(errnoDescription(errno))") }
            if lstat("\(source)/\(partial)", &scratch) == 0 {
                if asRoot { _ = chown(path, scratch.st_uid, scratch.st_gid) }
                chmod(path, scratch.st_mode & 0o7777)
            }
        }
    }

    /// Copies the regular file `relative` (mode, owner as root; made durable by ``writeManifest()``'s
    /// `sync`). False if it is gone
    /// (moved or removed since it was listed).
    private mutating func copyFile(_ relative: String) throws -> Bool {
        let from = open("\(source)/\(relative)", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard from >= 0 else {
            if errno == ENOENT { return false }
            throw BackupError("open \(source)/\(relative): \(errnoDescription(errno))")
        }
        defer { close(from) }
        var info = stat()
        guard fstat(from, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        let path = "\(destination)/\(relative)"
        try makeDirectory((relative as NSString).deletingLastPathComponent)
        let to = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard to >= 0 else { throw BackupError("create \(path): \(errnoDescription(errno))") }
        defer { close(to) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var crc: UInt32 = 0, size = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw BackupError("read \(source)/\(relative): \(errnoDescription(errno))")
            }
            var written = 0
            while written < count {
                let result = buffer.withUnsafeBytes { write(to, $0.baseAddress! + written, count - written) }
                if result < 0 {
                    if errno == EINTR { continue }
                    throw BackupError("write \(path): \(errnoDescription(errno))")
                }
                written += result
            }
            crc = CRC32.update(crc, buffer[..<count])
            size += count
        }
        if asRoot { _ = fchown(to, info.st_uid, info.st_gid) }
        fchmod(to, info.st_mode & 0o7777)
        entries.append((relative, size, crc))
        return true
    }

    /// Adds a file written otherwise (the store's copy) to the manifest.
    private mutating func record(_ relative: String, copiedAt path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BackupError("cannot read back \(path): \(errnoDescription(errno))") }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var crc: UInt32 = 0, size = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw BackupError("cannot read back \(path): \(errnoDescription(errno))") }
            if count == 0 { break }
            crc = CRC32.update(crc, buffer[..<count])
            size += count
        }
        entries.append((relative, size, crc))
    }

    /// `MANIFEST`: a header line, then `<crc32> <bytes> <path>` per file; then one `sync` makes
    /// every file and directory of the copy durable. (It reports no write-back error: a copy is
    /// checked against `MANIFEST` when it matters, see docs/operations.md.)
    mutating func writeManifest() throws {
        var text = "self-storage-backup 1 \(Clock.nowMilliseconds()) \(source)\n"
        for entry in entries.sorted(by: { $0.path < $1.path }) {
            text += "\(String(format: "%08x", entry.crc)) \(entry.size) \(entry.path)\n"
        }
        let path = "\(destination)/MANIFEST"
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw BackupError("cannot write \(path)")
        }
        // syncfs(2) is not in Swift's Glibc module; sync(2) waits for the same writeback (of
        // every file system) on Linux.
        sync()
    }

    /// `fsync`s the directory at `path` (best effort: a directory that cannot be opened was not written).
    func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}
