#if canImport(Glibc)
import Glibc
#endif
import Logging

/// A spool root: one directory holding named queues, the journal and the status index.
///
/// Opening a spool checks (or, for a new root, writes) its `format` file, and opens `tmp/` (where
/// files are staged before they are renamed into place) and `corrupt/` (the quarantine). All
/// further paths are opened relative to these descriptors with `O_NOFOLLOW`; the root itself
/// may be reached through a symlink, nothing below it may. The type knows nothing about what
/// the queued bytes mean. It is safe to use from several threads and processes at once.
public final class Spool: Sendable {
    /// The path the spool was opened at.
    public let path: String
    /// Limits and timings shared by the spool's queues.
    public let configuration: Configuration
    /// Where the spool reports quarantined files and reclaimed leases.
    public let logger: Logger

    let root: Directory
    let staging: Directory
    let quarantine: Directory

    /// The version written to, and required in, the root's `format` file.
    public static let formatLine = "spool-format 1"

    /// Tunables of a spool. The defaults suit a production server.
    public struct Configuration: Sendable {
        /// Largest payload `enqueue` accepts, and consumers read, in bytes (16 MiB: a batch of
        /// 10,000 requests, `spoolctl submit --batch`, is one item of up to about 6 MiB).
        public var maxItemBytes: Int = 16 << 20
        /// Files in `tmp/` older than this are debris of a crashed writer and are removed by
        /// ``Spool/sweepStaging(now:)``.
        public var stagingMaxAge: Duration = .seconds(3600)
        /// The file-system seam; tests replace it to inject faults.
        public var calls: FileSystemCalls = .live

        /// The default configuration.
        public init() {}
    }

    /// Opens the spool at `path`, creating the root and its layout when `create` is set.
    ///
    /// - Throws: ``SpoolError/notFound(_:)`` when the root does not exist and `create` is false;
    ///   ``SpoolError/unsupportedFormat(_:)`` when its `format` file names another version;
    ///   ``SpoolError/unsafePath(_:)`` for a symlinked `tmp/` or `corrupt/`;
    ///   ``SpoolError/system(operation:path:_:)`` for I/O and permission failures.
    public init(path: String, create: Bool = false, configuration: Configuration = Configuration(),
                logger: Logger = Logger(label: "spool")) throws(SpoolError) {
        self.path = path
        self.configuration = configuration
        self.logger = logger
        let calls = configuration.calls
        var fd: Int32
        do {
            fd = try calls.open(AT_FDCWD, path, O_RDONLY | O_DIRECTORY, 0)
        } catch let error where error.errno == ENOENT && create {
            do { try calls.makeDirectory(AT_FDCWD, path, 0o770) } catch where error.errno == EEXIST {} catch {
                throw .system(operation: "create spool root", path: path, error)
            }
            // Another process may have made it first; either way its entry is synced in the
            // parent before anything in it can be acknowledged.
            try Self.syncParent(of: path, calls)
            do { fd = try calls.open(AT_FDCWD, path, O_RDONLY | O_DIRECTORY, 0) } catch {
                throw .system(operation: "open spool root", path: path, error)
            }
        } catch let error where error.errno == ENOENT {
            throw .notFound("spool root \(path)")
        } catch let error where error.errno == ENOTDIR {
            throw .unsafePath(path)
        } catch {
            throw .system(operation: "open spool root", path: path, error)
        }
        root = Directory(descriptor: fd, path: "", calls: calls)
        staging = try root.subdirectory("tmp", create: create)
        quarantine = try root.subdirectory("corrupt", create: create)
        try checkFormat(create: create)
    }

    /// `fsync`s the directory holding `path` (a new spool root). A parent this process may write
    /// but not read (`EACCES` on opening it) cannot be synced and is left as it is.
    private static func syncParent(of path: String, _ calls: FileSystemCalls) throws(SpoolError) {
        let trimmed = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        let parent = trimmed.lastIndex(of: "/").map { $0 == trimmed.startIndex ? "/" : String(trimmed[..<$0]) } ?? "."
        let fd: Int32
        do { fd = try calls.open(AT_FDCWD, parent, O_RDONLY | O_DIRECTORY, 0) } catch let error where error.errno == EACCES {
            return
        } catch {
            throw .system(operation: "open parent of spool root", path: parent, error)
        }
        defer { try? calls.close(fd) }
        do { try calls.fsync(fd) } catch { throw .system(operation: "sync parent of spool root", path: parent, error) }
    }

    /// True when `tmp/` or `corrupt/` was removed, renamed or replaced after this spool opened
    /// them: every staged write (`tmp/`) or quarantine (`corrupt/`) through the old descriptor
    /// fails or lands where nobody looks. A long-running process must open the spool afresh.
    public var isDetached: Bool { !staging.isStillAt(below: root) || !quarantine.isStillAt(below: root) }

    private func checkFormat(create: Bool) throws(SpoolError) {
        do throws(SpoolError) {
            let bytes = try root.readFile("format", limit: 4096)
            let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
            guard line == Self.formatLine else { throw SpoolError.unsupportedFormat(line) }
        } catch .notFound("format") where create {
            try root.createDurably("format", contents: Array("\(Self.formatLine)\n".utf8), staging: staging, mode: 0o644)
        }
    }

    /// Opens queue `name`, creating its directories on first use.
    public func queue(_ name: QueueName, retry: RetryPolicy = RetryPolicy()) throws(SpoolError) -> Queue {
        try Queue(spool: self, name: name, retry: retry)
    }

    /// The directory `name` directly below the root (`journal`, `index`, …), created if
    /// missing, refused if it is a symlink. Returns its path.
    public func directoryPath(_ name: String) throws(SpoolError) -> String {
        guard Names.isSafeComponent(name) else { throw .invalidName(name) }
        _ = try root.subdirectory(name, create: true)
        return path.hasSuffix("/") ? path + name : "\(path)/\(name)"
    }

    /// Removes files in `tmp/` older than ``Configuration/stagingMaxAge``: the remains of writers
    /// that crashed between creating and publishing a file. Returns how many were removed.
    @discardableResult
    public func sweepStaging(now: Int64 = Clock.nowMilliseconds()) throws(SpoolError) -> Int {
        var removed = 0
        let maxAge = configuration.stagingMaxAge.components.seconds * 1000
        for name in try staging.names() {
            guard let info = try? configuration.calls.statusAt(staging.descriptor, name) else { continue }
            let modified = Int64(info.st_mtim.tv_sec) * 1000
            if now - modified > maxAge, (try? configuration.calls.unlink(staging.descriptor, name, 0)) != nil {
                removed += 1
                logger.notice("removed stale staging file", metadata: ["file": "tmp/\(name)"])
            }
        }
        return removed
    }

    /// Moves `name` out of `directory` into `corrupt/` under a fresh name, and logs why. Never
    /// throws: if even the move fails, the failure is logged and the caller skips the file.
    func quarantine(_ name: String, in directory: Directory, queue: QueueName, reason: String) {
        let target = "\(queue.rawValue).\(ItemID.generate().rawValue)"
        do {
            try directory.move(name, to: quarantine, as: target, operation: "quarantine")
            try? quarantine.sync()
            logger.warning("quarantined corrupt file", metadata: [
                "file": "\(directory.child(name))", "as": "corrupt/\(target)", "reason": "\(reason)",
            ])
        } catch {
            logger.error("cannot quarantine corrupt file", metadata: [
                "file": "\(directory.child(name))", "reason": "\(reason)", "error": "\(error)",
            ])
        }
    }
}
