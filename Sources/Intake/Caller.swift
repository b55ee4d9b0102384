#if canImport(Glibc)
import Glibc
#endif
import Spool

/// Who runs a front-door command: the real (not effective) Unix user, since `spoolctl` may run
/// setgid to the spool's group. Root and members of the operator group may see and cancel
/// every request; everyone else only the requests they submitted.
public struct Caller: Sendable, Equatable {
    /// The real user id.
    public let uid: UInt32
    /// The user's login name (or the uid as text).
    public let name: String
    /// Root, or a member of the operator group.
    public let isOperator: Bool

    /// A caller (for tests and services).
    public init(uid: UInt32, name: String, isOperator: Bool) {
        self.uid = uid
        self.name = name
        self.isOperator = isOperator
    }

    /// The calling process's real user, and whether it is an operator for `operatorGroup`.
    public static func current(operatorGroup: String) -> Caller {
        let uid = getuid()
        let name = ProcessRights.userName(uid) ?? String(uid)
        return Caller(uid: uid, name: name, isOperator: ProcessRights.isRootOrMember(uid: uid, name: name, of: operatorGroup))
    }

    /// Reads the file at `path` (at most `limit` bytes) with the real user's rights, not the
    /// spool group's that a setgid process has: for files the caller names (`units import`),
    /// which must not let anyone read a file of the spool group's. Returns nil if the file
    /// cannot be opened or read, or is larger than `limit`.
    public static func readFileAsRealUser(_ path: String, limit: Int = 16 << 20) -> [UInt8]? {
        let effective = getegid(), real = getgid()
        let switched = effective != real && setegid(real) == 0
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
        if switched, setegid(effective) != 0 { _exit(71) }  // never go on with the wrong rights
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 { return nil }
            if count == 0 { return bytes }
            bytes += buffer[..<count]
            if bytes.count > limit { return nil }
        }
    }

    /// Whether this caller may see or cancel a request submitted by `owner`.
    public func mayAccess(requestSubmittedBy owner: UInt32) -> Bool { isOperator || owner == uid }
}
