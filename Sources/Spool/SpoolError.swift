#if canImport(Glibc)
import Glibc
#endif

/// Every failure the spool reports. Each case names what failed, so a command-line front end
/// can print one specific line and map it to a sysexits code.
public enum SpoolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A file-system call failed (`EIO`, `ENOSPC`, `EACCES`, …) while doing `operation` on `path`
    /// (relative to the spool root). Nothing half-written was left visible.
    case system(operation: String, path: String, SystemCallError)
    /// A symlink, a non-directory where a directory belongs, or another path trick was found at
    /// `path`, and refused.
    case unsafePath(String)
    /// A queue name, item id or other name does not follow the documented grammar.
    case invalidName(String)
    /// The item's lease was lost (it expired and another consumer reclaimed it, or the item was
    /// acknowledged already): the caller no longer owns it and must not act on it further.
    case leaseLost(id: String)
    /// No such item or file.
    case notFound(String)
    /// A file could not be decoded; `reason` says why.
    case corrupt(path: String, reason: String)
    /// A payload or file is larger than the configured limit.
    case tooLarge(size: Int, limit: Int)
    /// The spool root was made by an incompatible format version.
    case unsupportedFormat(String)

    /// True when the underlying cause is a full file system (`ENOSPC`, `EDQUOT`).
    public var isNoSpace: Bool {
        if case .system(_, _, let error) = self { return error.errno == ENOSPC || error.errno == EDQUOT }
        return false
    }

    /// True when the underlying cause is a permission refusal (`EACCES`, `EPERM`).
    public var isPermissionDenied: Bool {
        if case .system(_, _, let error) = self { return error.errno == EACCES || error.errno == EPERM }
        return false
    }

    public var description: String {
        switch self {
        case .system(let operation, let path, let error):
            return "\(operation) \(path): \(error.call.rawValue): \(String(cString: strerror(error.errno)))"
        case .unsafePath(let path):
            return "refusing \(path): symlink or unexpected file type in the spool"
        case .invalidName(let name):
            return "invalid name \(name.debugDescription)"
        case .leaseLost(let id):
            return "lease on item \(id) was lost (reclaimed by another consumer or already acknowledged)"
        case .notFound(let what):
            return "\(what) not found"
        case .corrupt(let path, let reason):
            return "corrupt file \(path): \(reason)"
        case .tooLarge(let size, let limit):
            return "\(size) bytes exceeds the limit of \(limit) bytes"
        case .unsupportedFormat(let found):
            return "unsupported spool format \(found.debugDescription)"
        }
    }
}
