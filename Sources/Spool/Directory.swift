#if canImport(Glibc)
import Glibc
#endif

/// An open directory in the spool: a descriptor opened with `O_NOFOLLOW | O_DIRECTORY`, and
/// its path relative to the spool root (for messages). Every file operation of the spool is made
/// relative to one of these, so a symlink planted anywhere below the root is refused rather than
/// followed. Closes its descriptor when released.
final class Directory: Sendable {
    let descriptor: Int32
    /// Path relative to the spool root, e.g. `queues/inbound/ready/3f`.
    let path: String
    let calls: FileSystemCalls

    init(descriptor: Int32, path: String, calls: FileSystemCalls) {
        self.descriptor = descriptor
        self.path = path
        self.calls = calls
    }

    deinit { try? calls.close(descriptor) }

    func child(_ name: String) -> String { path.isEmpty ? name : "\(path)/\(name)" }

    /// Whether this directory is still the one at its path below `root` (same device and inode):
    /// false once it was removed, renamed or replaced, when a descriptor held open keeps
    /// pointing at a directory nobody else sees.
    func isStillAt(below root: Directory) -> Bool {
        guard let held = try? calls.status(descriptor), let current = try? calls.statusAt(root.descriptor, path) else { return false }
        return held.st_dev == current.st_dev && held.st_ino == current.st_ino && held.st_nlink > 0
    }

    /// Opens the subdirectory `name`, creating it (mode `mode`, then syncing this directory) if
    /// `create` is set and it does not exist. Throws ``SpoolError/unsafePath(_:)`` for a symlink
    /// or a non-directory.
    func subdirectory(_ name: String, create: Bool = false, mode: mode_t = 0o770) throws(SpoolError) -> Directory {
        do {
            let fd = try calls.open(descriptor, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0)
            return Directory(descriptor: fd, path: child(name), calls: calls)
        } catch let error where error.errno == ENOENT && create {
            do {
                try calls.makeDirectory(descriptor, name, mode)
            } catch let error where error.errno == EEXIST {
                // Another process made it first: fine.
            } catch {
                throw .system(operation: "create directory", path: child(name), error)
            }
            try sync()
            return try subdirectory(name, create: false)
        } catch let error where error.errno == ELOOP || error.errno == ENOTDIR {
            throw .unsafePath(child(name))
        } catch let error where error.errno == ENOENT {
            throw .notFound(child(name))
        } catch {
            throw .system(operation: "open directory", path: child(name), error)
        }
    }

    /// `fsync` of the directory itself: makes creations, renames and removals in it durable.
    func sync() throws(SpoolError) {
        do { try calls.fsync(descriptor) } catch { throw .system(operation: "sync directory", path: path, error) }
    }

    func names() throws(SpoolError) -> [String] {
        do { return try calls.list(descriptor) } catch { throw .system(operation: "list", path: path, error) }
    }

    /// Renames `name` here to `newName` in `target`. `ENOENT` becomes ``SpoolError/notFound(_:)``.
    func move(_ name: String, to target: Directory, as newName: String, operation: String) throws(SpoolError) {
        do {
            try calls.rename(descriptor, name, target.descriptor, newName)
        } catch let error where error.errno == ENOENT {
            throw .notFound(child(name))
        } catch {
            throw .system(operation: operation, path: child(name), error)
        }
    }

    /// Removes the file `name`; `ENOENT` becomes ``SpoolError/notFound(_:)``.
    func remove(_ name: String, operation: String) throws(SpoolError) {
        do {
            try calls.unlink(descriptor, name, 0)
        } catch let error where error.errno == ENOENT {
            throw .notFound(child(name))
        } catch {
            throw .system(operation: operation, path: child(name), error)
        }
    }

    /// Opens a regular file for reading without following a symlink, and reads it whole, up to
    /// `limit` bytes. Throws ``SpoolError/unsafePath(_:)`` for a symlink or non-regular file and
    /// ``SpoolError/tooLarge(size:limit:)`` past the limit.
    func readFile(_ name: String, limit: Int) throws(SpoolError) -> [UInt8] {
        let fd: Int32
        do {
            fd = try calls.open(descriptor, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0)
        } catch let error where error.errno == ELOOP {
            throw .unsafePath(child(name))
        } catch let error where error.errno == ENOENT {
            throw .notFound(child(name))
        } catch {
            throw .system(operation: "open", path: child(name), error)
        }
        defer { try? calls.close(fd) }
        let info: stat
        do { info = try calls.status(fd) } catch { throw .system(operation: "stat", path: child(name), error) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .unsafePath(child(name)) }
        guard info.st_size <= limit else { throw .tooLarge(size: Int(info.st_size), limit: limit) }
        return try readAll(fd, sizeHint: Int(info.st_size), limit: limit, path: child(name))
    }

    func readAll(_ fd: Int32, sizeHint: Int, limit: Int, path: String) throws(SpoolError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: max(sizeHint, 0) + 1)
        var filled = 0
        while true {
            if filled == bytes.count {
                guard bytes.count <= limit else { throw .tooLarge(size: bytes.count, limit: limit) }
                bytes.append(contentsOf: repeatElement(0, count: max(bytes.count, 4096)))
            }
            let result = bytes.withUnsafeMutableBytes { buffer in
                Result { () throws(SystemCallError) in try calls.read(fd, UnsafeMutableRawBufferPointer(rebasing: buffer[filled...])) }
            }
            let count: Int
            switch result {
            case .success(let value): count = value
            case .failure(let error): throw .system(operation: "read", path: path, error)
            }
            if count == 0 { break }
            filled += count
        }
        guard filled <= limit else { throw .tooLarge(size: filled, limit: limit) }
        bytes.removeSubrange(filled...)
        return bytes
    }

    /// Writes all of `bytes` to `fd`, looping over short writes.
    func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(SpoolError) {
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { buffer in
                Result { () throws(SystemCallError) in try calls.write(fd, UnsafeRawBufferPointer(rebasing: buffer[written...])) }
            }
            switch result {
            case .success(let count): written += count
            case .failure(let error): throw .system(operation: "write", path: path, error)
            }
        }
    }

    /// Creates `name` here with `bytes` durably and atomically: the bytes are written to a fresh
    /// file in `staging` (same file system), `fsync`ed, renamed to `name` here, and then this
    /// directory is `fsync`ed. Readers see either no file or the whole file. On any failure the
    /// staging file is removed and, if the rename had happened, the target too; the error is
    /// rethrown, so a retry starts from a clean state. With `replacing`, a target that the
    /// rename replaced is not removed when the directory's `fsync` fails: the old bytes are
    /// gone already, and removing the new ones would leave neither (the caller's retry
    /// replaces them again).
    func createDurably(_ name: String, contents bytes: [UInt8], staging: Directory, mode: mode_t = 0o640,
                       replacing: Bool = false) throws(SpoolError) {
        let stagingName = try staging.stage(bytes, mode: mode)
        do {
            try staging.move(stagingName, to: self, as: name, operation: "publish")
        } catch {
            try? calls.unlink(staging.descriptor, stagingName, 0)
            throw error
        }
        do { try sync() } catch {
            if !replacing { try? calls.unlink(descriptor, name, 0) }
            throw error
        }
    }

    /// Writes `bytes` to a fresh, uniquely named file in this (staging) directory, `fsync`s and
    /// closes it, and returns its name; on failure the file is removed. Publishing it (a rename
    /// or link elsewhere) is the caller's step.
    func stage(_ bytes: [UInt8], mode: mode_t) throws(SpoolError) -> String {
        let name = "\(ItemID.generate().rawValue).\(getpid())"
        let fd: Int32
        do {
            fd = try calls.open(descriptor, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode)
        } catch {
            throw .system(operation: "create", path: child(name), error)
        }
        do throws(SpoolError) {
            do throws(SpoolError) {
                try writeAll(fd, bytes, path: child(name))
                do { try calls.fsync(fd) } catch { throw SpoolError.system(operation: "sync", path: child(name), error) }
            } catch {
                try? calls.close(fd)
                throw error
            }
            do { try calls.close(fd) } catch { throw SpoolError.system(operation: "close", path: child(name), error) }
        } catch {
            try? calls.unlink(descriptor, name, 0)
            throw error
        }
        return name
    }
}
