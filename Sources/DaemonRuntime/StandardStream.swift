#if canImport(Glibc)
import Glibc
#endif

/// Writing to standard output and standard error with `write(2)`: retried on `EINTR`, after
/// partial writes and (waiting with `poll`) on a full non-blocking descriptor; never trapping,
/// never buffering, and reporting failure to the caller.
///
/// Foundation's `FileHandle.write` traps when the write fails (a closed stream, `/dev/full`,
/// a broken pipe), and `print` loses the failure in stdio's buffer; the programs use this
/// instead. `SIGPIPE` must be ignored (``SpoolProcess/prepare()``) so that a broken pipe is an
/// `EPIPE` here rather than the end of the process.
public enum StandardStream: Int32, Sendable {
    /// File descriptor 1.
    case output = 1
    /// File descriptor 2.
    case error = 2

    /// Writes all of `text`; returns nil on success or the `errno` of the failed write.
    @discardableResult
    public func write(_ text: String) -> Int32? {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { buffer -> Int32? in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(rawValue, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else if written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                    // A caller may hand over a non-blocking descriptor: wait until it takes more.
                    var request = pollfd(fd: rawValue, events: Int16(POLLOUT), revents: 0)
                    if poll(&request, 1, -1) < 0 && errno != EINTR { return errno }
                } else {
                    return written < 0 ? errno : EIO
                }
            }
            return nil
        }
    }

    /// Makes sure file descriptors 0, 1 and 2 are open before the process opens anything else.
    ///
    /// A caller can start a program with a standard stream closed (`2>&-`); the next file the
    /// program opens (a database, a journal segment) would get that number, and output or log
    /// lines would be written into it. A closed descriptor is pointed at `/dev/null` opened
    /// read-only, so writes to it fail with `EBADF` (and are reported) instead of landing in a
    /// file. Call it first thing in `main`.
    public static func reserveStandardDescriptors() {
        for descriptor: Int32 in 0...2 where fcntl(descriptor, F_GETFD) == -1 && errno == EBADF {
            let opened = open("/dev/null", O_RDONLY)
            if opened >= 0 && opened != descriptor {
                // Only happens if a lower descriptor was also closed and got this one first.
                _ = dup2(opened, descriptor)
                close(opened)
            }
        }
    }
}

/// The text of an `errno` value.
public func errnoDescription(_ code: Int32) -> String { String(cString: strerror(code)) }
