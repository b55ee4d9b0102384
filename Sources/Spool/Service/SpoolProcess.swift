#if canImport(Glibc)
import Glibc
#endif

/// Process-wide settings every program of the system applies first.
public enum SpoolProcess {
    /// Sets the file-creation mask to `007`: files and directories the programs create are
    /// readable and writable by the spool's group (which owns the spool and which `spoolctl`
    /// runs setgid to) and by nobody else. See `docs/operations.md` for owners and modes.
    /// Also ignores `SIGPIPE`: a hook that exits without reading its input must cost an
    /// `EPIPE` on the write, not the daemon.
    public static func prepare() {
        umask(0o007)
        signal(SIGPIPE, SIG_IGN)
    }
}
