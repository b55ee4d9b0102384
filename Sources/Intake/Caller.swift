#if canImport(Glibc)
import Glibc
#endif

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
        let name = userName(uid) ?? String(uid)
        return Caller(uid: uid, name: name, isOperator: uid == 0 || isMember(uid: uid, name: name, of: operatorGroup))
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

    private static func userName(_ uid: uid_t) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else { return nil }
        return String(cString: name)
    }

    /// Membership of the real user in `groupName`, from credentials the caller cannot forge:
    /// the process's supplementary groups (set at login; `getgroups(2)` does not include the
    /// effective group a setgid program runs with, and an unprivileged process can only drop
    /// groups, never add one), the real group id, and the group's member list in the group
    /// database. The effective group id is deliberately ignored: it is the spool's group, given
    /// by the setgid bit to every caller.
    private static func isMember(uid: uid_t, name: String, of groupName: String) -> Bool {
        guard !groupName.isEmpty else { return false }
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(groupName, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return false }
        let gid = entry.gr_gid
        let count = getgroups(0, nil)
        if count > 0 {
            var groups = [gid_t](repeating: 0, count: Int(count))
            let filled = getgroups(count, &groups)
            if filled > 0, groups[..<Int(filled)].contains(gid) { return true }
        }
        if getgid() == gid { return true }
        var member = entry.gr_mem
        while let pointer = member?.pointee {
            if String(cString: pointer) == name { return true }
            member = member?.advanced(by: 1)
        }
        return false
    }
}
