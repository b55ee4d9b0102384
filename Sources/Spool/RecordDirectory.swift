#if canImport(Glibc)
import Glibc
#endif

/// A directory of small, durable records below the spool root (`state/`, `keys/`, …), for the
/// bits of state that programs share outside the queues (idempotency keys, flags, health
/// reports). Every write is staged in `tmp/`, `fsync`ed, published by one rename or link,
/// and the directory `fsync`ed; readers never see a partial record.
public final class RecordDirectory: Sendable {
    let directory: Directory
    let spool: Spool

    /// Opens (creating) `path` below the spool root, e.g. `state`; every component is
    /// opened without following symlinks.
    public init(spool: Spool, path: String) throws(SpoolError) {
        self.spool = spool
        var current = spool.root
        for component in path.split(separator: "/") {
            guard Names.isSafeComponent(String(component)) else { throw .invalidName(path) }
            current = try current.subdirectory(String(component), create: true)
        }
        directory = current
    }

    /// The record `name`, or nil if there is none.
    public func read(_ name: String, limit: Int = 1 << 20) throws(SpoolError) -> [UInt8]? {
        guard Names.isSafeComponent(name, allowDots: true) else { throw .invalidName(name) }
        do { return try directory.readFile(name, limit: limit) } catch .notFound { return nil }
    }

    /// Replaces (or creates) the record `name` atomically and durably. When it throws, the
    /// record holds the old bytes or the new ones, never nothing (unless there was none).
    public func write(_ name: String, _ bytes: [UInt8]) throws(SpoolError) {
        guard Names.isSafeComponent(name, allowDots: true) else { throw .invalidName(name) }
        try directory.createDurably(name, contents: bytes, staging: spool.staging, replacing: true)
    }

    /// Creates the record `name` with `bytes` unless it exists; returns nil when this call created
    /// it, or the existing record's bytes. Of several concurrent callers exactly one creates it.
    public func createOnce(_ name: String, _ bytes: [UInt8]) throws(SpoolError) -> [UInt8]? {
        guard Names.isSafeComponent(name, allowDots: true) else { throw .invalidName(name) }
        let calls = spool.configuration.calls
        let stagingName = try spool.staging.stage(bytes, mode: 0o640)
        defer { try? calls.unlink(spool.staging.descriptor, stagingName, 0) }
        do {
            try calls.link(spool.staging.descriptor, stagingName, directory.descriptor, name)
        } catch let error where error.errno == EEXIST {
            return try read(name) ?? []
        } catch {
            throw .system(operation: "create", path: directory.child(name), error)
        }
        try directory.sync()
        return nil
    }

    /// Keeps a durable copy of record `name`, whose contents `bytes` cannot be used, in the
    /// spool's `corrupt/` as `<label>.<name>.<crc32>` (once: an existing copy is kept), and
    /// returns the copy's path relative to the spool root. The record itself stays where it is:
    /// for a record whose presence matters (an idempotency key), removing it would change what
    /// the next caller does.
    public func keepDamagedCopy(of name: String, bytes: [UInt8], label: String) throws(SpoolError) -> String {
        guard Names.isSafeComponent(name, allowDots: true), Names.isSafeComponent(label) else { throw .invalidName(name) }
        let target = "\(label).\(name).\(String(CRC32.checksum(bytes[...]), radix: 16))"
        if (try? spool.configuration.calls.statusAt(spool.quarantine.descriptor, target)) == nil {
            try spool.quarantine.createDurably(target, contents: bytes, staging: spool.staging, mode: 0o640)
        }
        return "corrupt/\(target)"
    }

    /// Removes the record `name`; no error if there is none.
    public func remove(_ name: String) throws(SpoolError) {
        guard Names.isSafeComponent(name, allowDots: true) else { throw .invalidName(name) }
        do { try directory.remove(name, operation: "remove") } catch .notFound { return }
        try directory.sync()
    }

    /// Runs `body` holding an exclusive `flock` on `<name>.lock` in this directory: serializes
    /// read-modify-write of a record across processes.
    public func withLock<T>(_ name: String, _ body: () throws -> T) throws -> T {
        guard let result = try withLock(name, timeout: nil, body) else { preconditionFailure("an unbounded lock always runs body") }
        return result
    }

    /// Runs `body` holding an exclusive `flock` on `<name>.lock`, waiting for it at most
    /// `timeout` (polling `LOCK_NB`; nil: without bound). Returns nil, without running `body`,
    /// when the lock was not had in time: for a process its caller may stop (`SIGSTOP`) while
    /// holding the lock, so that no one waits for it for ever.
    public func withLock<T>(_ name: String, timeout: Duration?, _ body: () throws -> T) throws -> T? {
        guard Names.isSafeComponent(name, allowDots: true) else { throw SpoolError.invalidName(name) }
        let calls = spool.configuration.calls
        let fd: Int32
        do {
            fd = try calls.open(directory.descriptor, "\(name).lock", O_RDWR | O_CREAT | O_NOFOLLOW, 0o660)
        } catch {
            throw SpoolError.system(operation: "open", path: directory.child("\(name).lock"), error)
        }
        defer { try? calls.close(fd) }
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while true {
            do { try calls.lock(fd, LOCK_EX | (deadline == nil ? 0 : LOCK_NB)); break } catch {
                guard let deadline, error.errno == EWOULDBLOCK else {
                    throw SpoolError.system(operation: "lock", path: directory.child("\(name).lock"), error)
                }
                guard ContinuousClock.now < deadline else { return nil }
                usleep(10_000)
            }
        }
        return try body()
    }
}
