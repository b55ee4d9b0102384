#if canImport(Glibc)
import Glibc
#endif

/// systemd's `JOURNAL_STREAM`: when a service's stderr is connected to the journal, systemd sets
/// it to `<device>:<inode>` of that stream (decimal, as `fstat(2)` reports them; see
/// systemd.exec(5), sd_journal_stream_fd(3)). Only when stderr is still that very stream (not
/// redirected by a wrapper or a shell) do the programs write journald's `<N>` priority prefixes.
public enum JournalStream {
    /// True when `JOURNAL_STREAM` in `environment` names the file descriptor 2 now has.
    public static func isStandardError(environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"], let (device, inode) = parse(value) else { return false }
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    /// The device and inode of a `JOURNAL_STREAM` value, or nil when it is not `<dev>:<ino>`.
    public static func parse(_ value: String) -> (device: UInt64, inode: UInt64)? {
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return nil }
        return (device, inode)
    }
}
