#if canImport(Glibc)
import Glibc
#endif
import Spool

/// Process-wide settings every program of the system applies first, before it opens anything.
///
/// `spoolctl` runs setgid to the spool's group, so everything its caller controls is hostile
/// input: open file descriptors, the umask, resource limits, signal dispositions and the
/// environment. ``prepare(keeping:)`` takes each of them out of the caller's hands.
public enum SpoolProcess {
    /// Whether the process runs with rights its real user does not have: the real user is not
    /// root and the effective user or group differs from the real one (a setgid `spoolctl`, or a
    /// daemon started from one). Postfix calls this "restricted mode": the program then trusts
    /// only the system configuration, and only operators may run daemon commands.
    /// (``ProcessRights/isRestricted``, here for the programs that already use this type.)
    public static var isRestricted: Bool { ProcessRights.isRestricted }

    /// The environment variables a restricted process keeps (besides those it is asked to keep):
    /// locale, terminal and time zone. Everything else (`TMPDIR`, `SQLITE_TMPDIR`, `SWIFT_*`,
    /// `SPOOL_LOG_LEVEL`, `NOTIFY_SOCKET`, …) is removed, and `PATH` is set to ``safePath``.
    public static func keepsVariable(_ name: String) -> Bool {
        name == "TERM" || name == "TZ" || name == "LANG" || name == "LANGUAGE" || name.hasPrefix("LC_")
    }

    /// Whether a restricted process keeps `value` for the locale variable `name` (`LANG`,
    /// `LANGUAGE`, `LC_*`): a locale name (letters, digits, `_`, `.`, `-`, `@`, and `:` between
    /// the names `LANGUAGE` lists), at most 64 bytes, never a path. ICU, under Foundation, crashed
    /// (SIGSEGV) on a locale naming a path (`LC_ALL=/x`) in every `--json` error answer; glibc
    /// itself ignores such names in a setgid program.
    public static func keepsLocale(_ name: String, _ value: String) -> Bool {
        guard name == "LANG" || name == "LANGUAGE" || name.hasPrefix("LC_") else { return true }
        return value.utf8.count <= 64 && !value.hasPrefix(".") && value.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == 0x5f || byte == 0x2e || byte == 0x2d || byte == 0x40 || byte == 0x3a
        }
    }

    /// `PATH` in a restricted process.
    public static let safePath = "/usr/sbin:/usr/bin:/sbin:/bin"

    /// Prepares the process; call it first in `main`.
    ///
    /// - Makes sure descriptors 0, 1 and 2 are open, so that no file the program opens later
    ///   becomes its stdout or stderr and receives output or error text. A descriptor the caller
    ///   closed is opened on `/dev/null` *read-only* (glibc puts the same kind of stand-in there
    ///   for a setgid program): writing a result to it fails, and the command says so with its
    ///   exit code (74) instead of claiming it delivered what nobody can read.
    /// - Sets the file-creation mask to `007`: files and directories the programs create are
    ///   readable and writable by the spool's group (which owns the spool and which `spoolctl`
    ///   runs setgid to) and by nobody else. See `docs/operations.md` for owners and modes.
    /// - Ignores `SIGPIPE` (a hook that exits without reading its input costs an `EPIPE` on the
    ///   write, not the daemon) and `SIGXFSZ` (a write beyond `RLIMIT_FSIZE` fails with `EFBIG`,
    ///   which the writer cuts back and reports, instead of killing the process mid-write).
    /// - In restricted mode (``isRestricted``): raises `RLIMIT_FSIZE` to its hard limit and the
    ///   soft `RLIMIT_NOFILE` towards its hard limit (see ``hasTooFewDescriptors``), sets
    ///   `RLIMIT_CORE` to 0 (no core file holds spool data), and replaces the environment by
    ///   the variables ``keepsVariable(_:)`` accepts (locale variables only with a locale name,
    ///   see ``keepsLocale(_:_:)``), the variables named in `names` (the caller
    ///   validates them, e.g. `SPOOL_CONFIG`) and `PATH=`\(safePath); descriptors above 2 that
    ///   the caller left open are marked close-on-exec.
    public static func prepare(keeping names: Set<String> = []) {
        StandardStream.reserveStandardDescriptors()
        umask(0o007)
        signal(SIGPIPE, SIG_IGN)
        signal(SIGXFSZ, SIG_IGN)
        if isRestricted {
            resetLimits()
            scrubEnvironment(keeping: names)
            closeInheritedDescriptorsOnExec()
        }
    }

    /// Marks every descriptor above 2 the caller left open close-on-exec, so that none of them
    /// reaches a program this one starts (the daemons of `spoolctl up`, their hooks) with the
    /// spool group's rights.
    private static func closeInheritedDescriptorsOnExec() {
        guard let directory = opendir("/proc/self/fd") else { return }
        defer { closedir(directory) }
        let own = dirfd(directory)
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let fd = Int32(name), fd > 2, fd != own else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    /// The fewest descriptors a restricted process runs with: below that, SQLite or
    /// libdispatch (which traps, `SIGILL`, when it cannot get one) fail midway.
    public static let minimumDescriptors: rlim_t = 64

    /// In restricted mode, whether the caller's hard `RLIMIT_NOFILE` is below
    /// ``minimumDescriptors`` (the soft limit is raised to the hard one by ``prepare(keeping:)``):
    /// the program should refuse at once (exit 74), before it opens anything.
    public static var hasTooFewDescriptors: Bool {
        var limit = rlimit()
        guard isRestricted, getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return false }
        return limit.rlim_cur < minimumDescriptors
    }

    private static func resetLimits() {
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = min(limit.rlim_max, max(limit.rlim_cur, 1024))
            _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
        if getrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0, limit.rlim_cur != limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit)
        }
        if getrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &limit) == 0 {
            limit.rlim_cur = 0
            _ = setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &limit)
        }
    }

    private static func scrubEnvironment(keeping names: Set<String>) {
        var kept: [(String, String)] = []
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                let name = String(text[..<equals]), value = String(text[text.index(after: equals)...])
                if (keepsVariable(name) && keepsLocale(name, value)) || names.contains(name) { kept.append((name, value)) }
            }
            pointer += 1
        }
        clearenv()
        for (name, value) in kept { setenv(name, value, 1) }
        setenv("PATH", safePath, 1)
    }
}
