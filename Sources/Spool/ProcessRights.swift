#if canImport(Glibc)
import Glibc
#endif

/// The rights the calling process runs with, from credentials its caller cannot forge: whether it
/// is restricted (setgid to the spool's group and run by an ordinary user) and whether its real
/// user belongs to a group. Every program that opens the spool needs these.
public enum ProcessRights {
    /// Whether the process runs with rights its real user does not have: the real user is not
    /// root and the effective user or group differs from the real one (a setgid `spoolctl`, or a
    /// program started from one). Postfix calls this "restricted mode": the program then trusts
    /// only the system configuration.
    public static var isRestricted: Bool {
        let uid = getuid()
        return uid != 0 && (geteuid() != uid || getegid() != getgid())
    }

    /// The login name of user `uid`, nil if the user database has none.
    public static func userName(_ uid: uid_t) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else { return nil }
        return String(cString: name)
    }

    /// Whether the real user (`uid`, login `name`) is root or a member of `groupName`.
    public static func isRootOrMember(uid: uid_t, name: String, of groupName: String) -> Bool {
        uid == 0 || isMember(uid: uid, name: name, of: groupName)
    }

    /// Whether the calling process's real user is root or a member of `groupName`.
    public static func realUserIsRootOrMember(of groupName: String) -> Bool {
        let uid = getuid()
        return isRootOrMember(uid: uid, name: userName(uid) ?? String(uid), of: groupName)
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
