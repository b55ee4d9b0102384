#if canImport(Glibc)
import Glibc
#endif

/// Delivers messages into one Maildir per customer: `<root>/<customer>/{tmp,new,cur}`.
///
/// The file name is the notification's event id, so a redelivery of the same event finds its
/// file (in `new/`, or in `cur/` once a mail reader moved it) and writes nothing: delivery is
/// idempotent. Each message is written to `tmp/`, `fsync`ed, linked into `new/` (which fails
/// rather than replaces if it exists), and `new/` is `fsync`ed. Directories are opened without
/// following symlinks below the root.
public struct MaildirDelivery: Sendable {
    /// The root of all Maildirs.
    public let root: String

    /// Delivery under `root` (created if missing).
    public init(root: String) { self.root = root }

    /// Why a delivery failed.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Delivers `message` for `customer` as `eventId`; returns false if it was already there.
    ///
    /// - Throws: ``Failure`` naming the failed step (the caller retries later).
    @discardableResult
    public func deliver(_ message: String, customer: String, eventId: String) throws -> Bool {
        guard !customer.isEmpty, !customer.hasPrefix("."), !customer.contains("/"),
              !eventId.isEmpty, !eventId.hasPrefix("."), !eventId.contains("/") else {
            throw Failure(description: "unsafe maildir name for customer \(customer.debugDescription)")
        }
        try makeDirectories(root)
        let rootFD = try openDirectory(AT_FDCWD, root, follow: true)
        defer { close(rootFD) }
        try makeDirectory(at: rootFD, customer)
        let mailbox = try openDirectory(rootFD, customer)
        defer { close(mailbox) }
        for name in ["tmp", "new", "cur"] { try makeDirectory(at: mailbox, name) }
        let tmp = try openDirectory(mailbox, "tmp"), new = try openDirectory(mailbox, "new"), cur = try openDirectory(mailbox, "cur")
        defer { close(tmp); close(new); close(cur) }
        if exists(new, eventId) || curHas(cur, eventId) { return false }

        let staged = "\(eventId).\(getpid())"
        let fd = openat(tmp, staged, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw failure("create tmp/\(staged)") }
        defer { unlinkat(tmp, staged, 0) }
        let bytes = Array(message.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                close(fd)
                throw failure("write tmp/\(staged)")
            }
            written += count
        }
        guard fsync(fd) == 0 else {
            close(fd)
            throw failure("fsync tmp/\(staged)")
        }
        close(fd)
        if linkat(tmp, staged, new, eventId, 0) != 0 {
            if errno == EEXIST { return false }
            throw failure("link new/\(eventId)")
        }
        guard fsync(new) == 0 else { throw failure("fsync new/") }
        return true
    }

    private func failure(_ step: String) -> Failure {
        Failure(description: "maildir \(step): \(String(cString: strerror(errno)))")
    }

    private func exists(_ directory: Int32, _ name: String) -> Bool {
        var info = stat()
        return fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0
    }

    private func curHas(_ cur: Int32, _ eventId: String) -> Bool {
        if exists(cur, eventId) { return true }
        let copy = dup(cur)
        guard copy >= 0, let stream = fdopendir(copy) else { return false }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name.hasPrefix(eventId + ":") { return true }
        }
        return false
    }

    private func openDirectory(_ parent: Int32, _ name: String, follow: Bool = false) throws -> Int32 {
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW))
        guard fd >= 0 else { throw failure("open \(name)") }
        return fd
    }

    private func makeDirectory(at parent: Int32, _ name: String) throws {
        if mkdirat(parent, name, 0o750) != 0 && errno != EEXIST { throw failure("mkdir \(name)") }
    }

    private func makeDirectories(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o750) != 0 && errno != EEXIST { throw failure("mkdir \(prefix)") }
            prefix += "/"
        }
    }
}
