#if canImport(Glibc)
import Glibc
#endif
import Spool
import Synchronization

/// Delivers messages into one Maildir per customer: `<root>/<customer>/{tmp,new,cur}`.
///
/// Durability: `deliver` returns only when the message survives a power failure. The message is
/// written to `tmp/`, `fsync`ed, linked into `new/` (which fails rather than replaces if it
/// exists) and `new/` is `fsync`ed. Every directory on the way (the root and its missing
/// ancestors, the customer's directory, its `tmp`, `new` and `cur`) is made durable too: after
/// creating it, and the first time this process uses it (a previous attempt may have created it
/// and failed before its parent was synced), the parent directory is `fsync`ed. Only then may the
/// caller record the delivery as done.
///
/// Idempotency: the file name is the notification's event id, so a redelivery of the same event
/// finds its file (in `new/`, or in `cur/` once a mail reader moved it) and writes nothing; a
/// file found in `new/` is synced again, since the attempt that linked it may have failed before.
///
/// Every file-system call goes through ``FileSystemCalls`` (the fault tests' seam); directories
/// below the root are opened without following symlinks. Errors name the step and its `errno`.
public struct MaildirDelivery: Sendable {
    /// The root of all Maildirs.
    public let root: String
    private let calls: FileSystemCalls
    private let durable: DurableDirectories

    /// Delivery under `root` (created if missing), through `calls`.
    public init(root: String, calls: FileSystemCalls = .live) {
        self.root = root
        self.calls = calls
        durable = DurableDirectories()
    }

    /// Why a delivery failed.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Delivers `message` for `customer` as `eventId`; returns false if it was already there.
    ///
    /// With `syncingNew` false (group commit: several deliveries, then one sync per Maildir), the
    /// last step, the `fsync` of `new/`, is left to the caller: the message is durable only once
    /// ``syncNew(customers:)`` has returned for its customer. Everything else (the message file
    /// synced before it is linked, the directories on the way) is as above.
    ///
    /// - Throws: ``Failure`` naming the failed step and its `errno` (the caller retries later;
    ///   nothing visible is left behind: a staged file in `tmp/` is removed).
    @discardableResult
    public func deliver(_ message: String, customer: String, eventId: String, syncingNew: Bool = true) throws -> Bool {
        guard Self.isSafeName(customer), Self.isSafeName(eventId) else {
            throw Failure(description: "unsafe maildir name for customer \(customer.debugDescription)")
        }
        let rootFD = try openRoot()
        defer { try? calls.close(rootFD) }
        let mailboxPath = "\(root)/\(customer)"
        let mailbox = try directory(customer, in: rootFD, path: mailboxPath)
        defer { try? calls.close(mailbox) }
        let tmp = try directory("tmp", in: mailbox, path: "\(mailboxPath)/tmp")
        defer { try? calls.close(tmp) }
        let new = try directory("new", in: mailbox, path: "\(mailboxPath)/new")
        defer { try? calls.close(new) }
        let cur = try directory("cur", in: mailbox, path: "\(mailboxPath)/cur")
        defer { try? calls.close(cur) }

        if exists(new, eventId) {
            if syncingNew { try step("fsync new/") { () throws(SystemCallError) in try calls.fsync(new) } }
            return false
        }
        if try curHas(cur, eventId) { return false }

        let staged = "\(eventId).\(getpid()).\(StagingCounter.next())"
        let fd = try step("create tmp/\(staged)") { () throws(SystemCallError) in
            try calls.open(tmp, staged, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o640)
        }
        defer { try? calls.unlink(tmp, staged, 0) }
        do {
            try write(Array(message.utf8), to: fd, name: "tmp/\(staged)")
            try step("fsync tmp/\(staged)") { () throws(SystemCallError) in try calls.fsync(fd) }
        } catch {
            try? calls.close(fd)
            throw error
        }
        try step("close tmp/\(staged)") { () throws(SystemCallError) in try calls.close(fd) }
        do {
            try calls.link(tmp, staged, new, eventId)
        } catch let error where error.errno == EEXIST {
            // A concurrent or earlier attempt linked it: make sure it is durable, then report it.
            if syncingNew { try step("fsync new/") { () throws(SystemCallError) in try calls.fsync(new) } }
            return false
        } catch {
            throw failure("link new/\(eventId)", error)
        }
        if syncingNew { try step("fsync new/") { () throws(SystemCallError) in try calls.fsync(new) } }
        return true
    }

    /// Syncs the `new/` directory of each of `customers`' Maildirs (once each): completes the
    /// deliveries made with `syncingNew: false`. Opens the directories without following
    /// symlinks below the root, as ``deliver(_:customer:eventId:syncingNew:)`` does.
    ///
    /// - Throws: ``Failure`` naming the step and its `errno`; the deliveries to that customer
    ///   are then not known to be durable (a retry of them syncs again).
    public func syncNew(customers: Set<String>) throws {
        guard !customers.isEmpty else { return }
        let rootFD = try openRoot()
        defer { try? calls.close(rootFD) }
        for customer in customers.sorted() {
            guard Self.isSafeName(customer) else { throw Failure(description: "unsafe maildir name for customer \(customer.debugDescription)") }
            let mailbox = try step("open \(root)/\(customer)") { () throws(SystemCallError) in
                try calls.open(rootFD, customer, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0)
            }
            defer { try? calls.close(mailbox) }
            let new = try step("open \(root)/\(customer)/new") { () throws(SystemCallError) in
                try calls.open(mailbox, "new", O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0)
            }
            defer { try? calls.close(new) }
            try step("fsync new/") { () throws(SystemCallError) in try calls.fsync(new) }
        }
    }

    static func isSafeName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && !name.contains("/") && !name.utf8.contains(0)
    }

    private func write(_ bytes: [UInt8], to fd: Int32, name: String) throws {
        var written = 0
        while written < bytes.count {
            let count: Int
            do {
                count = try bytes.withUnsafeBytes { try calls.write(fd, UnsafeRawBufferPointer(rebasing: $0[written...])) }
            } catch let error as SystemCallError {
                throw failure("write \(name)", error)
            }
            // write(2) returning 0 for a non-empty buffer makes no progress: report it, never spin.
            guard count > 0 else { throw failure("write \(name)", SystemCallError(call: .write, errno: EIO)) }
            written += count
        }
    }

    /// Opens the root, creating it and its missing ancestors (each made durable in its parent).
    private func openRoot() throws -> Int32 {
        var path = root.hasPrefix("/") ? "/" : "."
        var parent = try step("open \(path)") { () throws(SystemCallError) in
            try calls.open(AT_FDCWD, path, O_RDONLY | O_DIRECTORY, 0)
        }
        for component in root.split(separator: "/") where component != "." {
            let name = String(component)
            let child = path == "/" ? "/\(name)" : path == "." ? name : "\(path)/\(name)"
            let next: Int32
            do {
                next = try openOrCreate(name, in: parent, parentPath: path, path: child, follow: true)
            } catch {
                try? calls.close(parent)
                throw error
            }
            try? calls.close(parent)
            parent = next
            path = child
        }
        return parent
    }

    /// The directory `name` below the root (not following a symlink), created if missing.
    private func directory(_ name: String, in parent: Int32, path: String) throws -> Int32 {
        try openOrCreate(name, in: parent, parentPath: nil, path: path, follow: false)
    }

    /// Creates `name` in `parent` if missing and opens it. If this process created it, or has
    /// not yet made it durable, `parent` is `fsync`ed first. An ancestor of the root that existed
    /// and cannot be read (`EACCES`) is not synced: it is not ours.
    private func openOrCreate(_ name: String, in parent: Int32, parentPath: String?, path: String, follow: Bool) throws -> Int32 {
        var created = false
        do {
            try calls.makeDirectory(parent, name, 0o750)
            created = true
        } catch let error where error.errno == EEXIST {
        } catch {
            throw failure("mkdir \(path)", error)
        }
        if created || !durable.contains(path) {
            do {
                try calls.fsync(parent)
            } catch let error where error.errno == EBADF && !created && parentPath != nil {
                // An O_PATH ancestor of the root that we did not create: nothing of ours to sync.
            } catch {
                throw failure("fsync \(parentPath ?? "directory of \(path)")", error)
            }
        }
        let flags = O_RDONLY | O_DIRECTORY | (follow ? 0 : O_NOFOLLOW)
        let fd: Int32
        do {
            fd = try calls.open(parent, name, flags, 0)
        } catch let error where error.errno == EACCES && follow && !created && path != root {
            // An ancestor we may pass through but not read (mode 711): enough to reach the root.
            fd = try step("open \(path)") { () throws(SystemCallError) in try calls.open(parent, name, openPath | O_DIRECTORY, 0) }
        } catch {
            throw failure("open \(path)", error)
        }
        durable.insert(path)
        return fd
    }

    private func exists(_ directory: Int32, _ name: String) -> Bool {
        (try? calls.statusAt(directory, name)) != nil
    }

    private func curHas(_ cur: Int32, _ eventId: String) throws -> Bool {
        if exists(cur, eventId) { return true }
        let names = try step("list cur/") { () throws(SystemCallError) in try calls.list(cur) }
        return names.contains { $0.hasPrefix(eventId + ":") }
    }

    private func step<T>(_ name: String, _ body: () throws(SystemCallError) -> T) throws -> T {
        do { return try body() } catch { throw failure(name, error) }
    }

    private func failure(_ step: String, _ error: SystemCallError) -> Failure {
        // The errno travels in the error, captured by the call that failed: nothing in between
        // (a close, a log line) can change it.
        Failure(description: "maildir \(step): \(String(cString: strerror(error.errno))) (errno \(error.errno))")
    }
}

/// The directories this process has made durable (their entry in the parent is synced).
private final class DurableDirectories: Sendable {
    private let paths = Mutex<Set<String>>([])
    func contains(_ path: String) -> Bool { paths.withLock { $0.contains(path) } }
    func insert(_ path: String) { _ = paths.withLock { $0.insert(path) } }
}

/// Unique staging names within a process (several workers may deliver at once).
private enum StagingCounter {
    static let value = Atomic<Int>(0)
    static func next() -> Int { value.add(1, ordering: .relaxed).newValue }
}

/// `O_PATH` (Linux; not exported to Swift by Glibc): a descriptor to walk through, not to read.
private let openPath: Int32 = 0o10000000
