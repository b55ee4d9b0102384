#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// The one seam through which every file-system call of the spool goes.
///
/// Production code uses ``live``. A test replaces single calls, for example with
/// ``failing(_:occurrence:errno:)``, to make the n-th `rename` fail with `EIO` or the first
/// `write` fail with `ENOSPC`; `LD_PRELOAD` injectors cannot see `openat`/`renameat`, this can.
/// Every closure either succeeds or throws ``SystemCallError``; none of them retries.
public struct FileSystemCalls: Sendable {
    /// `openat(2)`; returns the new descriptor.
    public var open: @Sendable (_ directory: Int32, _ name: String, _ flags: Int32, _ mode: mode_t) throws(SystemCallError) -> Int32
    /// `close(2)`.
    public var close: @Sendable (_ descriptor: Int32) throws(SystemCallError) -> Void
    /// `read(2)`: at most `buffer.count` bytes; 0 at end of file.
    public var read: @Sendable (_ descriptor: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws(SystemCallError) -> Int
    /// `write(2)`: may write fewer bytes than given.
    public var write: @Sendable (_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemCallError) -> Int
    /// `fsync(2)` of a file or a directory.
    public var fsync: @Sendable (_ descriptor: Int32) throws(SystemCallError) -> Void
    /// `renameat(2)`: atomic; replaces an existing target.
    public var rename: @Sendable (_ fromDirectory: Int32, _ from: String, _ toDirectory: Int32, _ to: String) throws(SystemCallError) -> Void
    /// `linkat(2)`: a second name for a file; fails with `EEXIST` rather than replacing.
    public var link: @Sendable (_ fromDirectory: Int32, _ from: String, _ toDirectory: Int32, _ to: String) throws(SystemCallError) -> Void
    /// `unlinkat(2)`; `AT_REMOVEDIR` in `flags` removes an empty directory.
    public var unlink: @Sendable (_ directory: Int32, _ name: String, _ flags: Int32) throws(SystemCallError) -> Void
    /// `mkdirat(2)`.
    public var makeDirectory: @Sendable (_ directory: Int32, _ name: String, _ mode: mode_t) throws(SystemCallError) -> Void
    /// `fstat(2)`.
    public var status: @Sendable (_ descriptor: Int32) throws(SystemCallError) -> stat
    /// `fstatat(2)` of `name` in a directory, not following a symlink.
    public var statusAt: @Sendable (_ directory: Int32, _ name: String) throws(SystemCallError) -> stat
    /// The names in a directory, without `.` and `..` (`fdopendir(3)` on a duplicate).
    public var list: @Sendable (_ directory: Int32) throws(SystemCallError) -> [String]
    /// `ftruncate(2)`.
    public var truncate: @Sendable (_ descriptor: Int32, _ length: Int64) throws(SystemCallError) -> Void
    /// `flock(2)`.
    public var lock: @Sendable (_ descriptor: Int32, _ operation: Int32) throws(SystemCallError) -> Void

    /// The real system calls.
    public static let live = FileSystemCalls(
        open: { dir, name, flags, mode throws(SystemCallError) in
            try retryingEINTR(.open) { openat(dir, name, flags | O_CLOEXEC, mode) }
        },
        close: { fd throws(SystemCallError) in
            // close(2) must not be retried on EINTR on Linux: the descriptor is gone.
            if Glibc.close(fd) != 0, errno != EINTR { throw SystemCallError(call: .close, errno: errno) }
        },
        read: { fd, buffer throws(SystemCallError) in
            try retryingEINTR(.read) { Glibc.read(fd, buffer.baseAddress, buffer.count) }
        },
        write: { fd, bytes throws(SystemCallError) in
            try retryingEINTR(.write) { Glibc.write(fd, bytes.baseAddress, bytes.count) }
        },
        fsync: { fd throws(SystemCallError) in
            _ = try retryingEINTR(.fsync) { Glibc.fsync(fd) }
        },
        rename: { fromDir, from, toDir, to throws(SystemCallError) in
            _ = try retryingEINTR(.rename) { renameat(fromDir, from, toDir, to) }
        },
        link: { fromDir, from, toDir, to throws(SystemCallError) in
            _ = try retryingEINTR(.link) { linkat(fromDir, from, toDir, to, 0) }
        },
        unlink: { dir, name, flags throws(SystemCallError) in
            _ = try retryingEINTR(.unlink) { unlinkat(dir, name, flags) }
        },
        makeDirectory: { dir, name, mode throws(SystemCallError) in
            _ = try retryingEINTR(.makeDirectory) { mkdirat(dir, name, mode) }
        },
        status: { fd throws(SystemCallError) in
            var info = stat()
            _ = try retryingEINTR(.status) { fstat(fd, &info) }
            return info
        },
        statusAt: { dir, name throws(SystemCallError) in
            var info = stat()
            _ = try retryingEINTR(.status) { fstatat(dir, name, &info, AT_SYMLINK_NOFOLLOW) }
            return info
        },
        list: { fd throws(SystemCallError) in
            let copy = dup(fd)
            guard copy >= 0 else { throw SystemCallError(call: .list, errno: errno) }
            guard let stream = fdopendir(copy) else {
                let code = errno
                _ = Glibc.close(copy)
                throw SystemCallError(call: .list, errno: code)
            }
            defer { closedir(stream) }
            rewinddir(stream)
            var names: [String] = []
            errno = 0
            while let entry = readdir(stream) {
                let name = withUnsafePointer(to: entry.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                }
                if name != "." && name != ".." { names.append(name) }
            }
            if errno != 0 { throw SystemCallError(call: .list, errno: errno) }
            return names
        },
        truncate: { fd, length throws(SystemCallError) in
            _ = try retryingEINTR(.truncate) { ftruncate(fd, off_t(length)) }
        },
        lock: { fd, operation throws(SystemCallError) in
            _ = try retryingEINTR(.lock) { flock(fd, operation) }
        }
    )
}

/// Which call of ``FileSystemCalls`` failed; used in errors and to aim injected faults.
public enum SystemCall: String, Sendable, CaseIterable {
    case open, close, read, write, fsync, rename, link, unlink, makeDirectory, status, list, truncate, lock
}

/// A failed system call: which one and its `errno`.
public struct SystemCallError: Error, Sendable, Equatable {
    /// The call that failed.
    public var call: SystemCall
    /// The `errno` it set.
    public var errno: Int32

    /// Creates the error for `call` failing with `errno`.
    public init(call: SystemCall, errno: Int32) {
        self.call = call
        self.errno = errno
    }
}

private func retryingEINTR<T: BinaryInteger>(_ call: SystemCall, _ body: () -> T) throws(SystemCallError) -> T {
    while true {
        let result = body()
        if result >= 0 { return result }
        if errno != EINTR { throw SystemCallError(call: call, errno: errno) }
    }
}

extension FileSystemCalls {
    /// These calls, observed by `injector`: while it is armed, each call is counted and the one
    /// it targets fails with the chosen `errno` instead of running. For fault-injection tests.
    public func injecting(_ injector: FaultInjector) -> FileSystemCalls {
        let trip: @Sendable (SystemCall) throws(SystemCallError) -> Void = { call throws(SystemCallError) in
            if let errno = injector.observe(call) { throw SystemCallError(call: call, errno: errno) }
        }
        var calls = self
        calls.open = { a, b, c, d throws(SystemCallError) in try trip(.open); return try self.open(a, b, c, d) }
        calls.close = { a throws(SystemCallError) in try trip(.close); try self.close(a) }
        calls.read = { a, b throws(SystemCallError) in try trip(.read); return try self.read(a, b) }
        calls.write = { a, b throws(SystemCallError) in try trip(.write); return try self.write(a, b) }
        calls.fsync = { a throws(SystemCallError) in try trip(.fsync); try self.fsync(a) }
        calls.rename = { a, b, c, d throws(SystemCallError) in try trip(.rename); try self.rename(a, b, c, d) }
        calls.link = { a, b, c, d throws(SystemCallError) in try trip(.link); try self.link(a, b, c, d) }
        calls.unlink = { a, b, c throws(SystemCallError) in try trip(.unlink); try self.unlink(a, b, c) }
        calls.makeDirectory = { a, b, c throws(SystemCallError) in try trip(.makeDirectory); try self.makeDirectory(a, b, c) }
        calls.status = { a throws(SystemCallError) in try trip(.status); return try self.status(a) }
        calls.statusAt = { a, b throws(SystemCallError) in try trip(.status); return try self.statusAt(a, b) }
        calls.list = { a throws(SystemCallError) in try trip(.list); return try self.list(a) }
        calls.truncate = { a, b throws(SystemCallError) in try trip(.truncate); try self.truncate(a, b) }
        calls.lock = { a, b throws(SystemCallError) in try trip(.lock); try self.lock(a, b) }
        return calls
    }
}

/// Counts the calls made through ``FileSystemCalls/injecting(_:)`` while armed, and makes one
/// chosen call fail: the `occurrence`-th call (from 1) of `target` after ``arm(failing:occurrence:errno:)``.
public final class FaultInjector: Sendable {
    private struct State {
        var armed = false
        var target: SystemCall?
        var occurrence = 0
        var errno: Int32 = 0
        var counts: [SystemCall: Int] = [:]
        var fired = false
    }

    private let state = Mutex(State())

    /// A disarmed injector: calls pass through uncounted.
    public init() {}

    /// Starts counting from zero; if `target` is given, its `occurrence`-th call fails with
    /// `errno`, once.
    public func arm(failing target: SystemCall? = nil, occurrence: Int = 1, errno: Int32 = 0) {
        state.withLock { $0 = State(armed: true, target: target, occurrence: occurrence, errno: errno) }
    }

    /// Stops counting and injecting; returns the counts and whether the fault fired.
    @discardableResult
    public func disarm() -> (counts: [SystemCall: Int], fired: Bool) {
        state.withLock { state in
            state.armed = false
            return (state.counts, state.fired)
        }
    }

    func observe(_ call: SystemCall) -> Int32? {
        state.withLock { state in
            guard state.armed else { return nil }
            state.counts[call, default: 0] += 1
            guard call == state.target, state.counts[call] == state.occurrence, !state.fired else { return nil }
            state.fired = true
            return state.errno
        }
    }
}
