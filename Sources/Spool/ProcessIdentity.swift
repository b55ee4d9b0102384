#if canImport(Glibc)
import Glibc
#endif

/// Who holds a lease: a process named so that its death can be proven. The token
/// `<boot>-<pid>-<start>` joins the first 8 hex digits of the kernel's boot id, the process id and
/// the process's start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`). A pid is
/// reused after a process dies, but never with the same start time in the same boot.
public struct ProcessIdentity: Hashable, Sendable, CustomStringConvertible {
    /// First 8 hex digits of `/proc/sys/kernel/random/boot_id`.
    public let boot: String
    /// The process id.
    public let pid: Int32
    /// Start time in clock ticks since boot.
    public let start: UInt64

    /// The identity of the calling process.
    public static let current: ProcessIdentity = {
        let pid = getpid()
        return ProcessIdentity(boot: currentBoot(), pid: pid, start: startTime(of: pid) ?? 0)
    }()

    init(boot: String, pid: Int32, start: UInt64) {
        self.boot = boot
        self.pid = pid
        self.start = start
    }

    init?(token: String) {
        let parts = token.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 8, parts[0].allSatisfy(\.isHexDigit),
              let pid = Int32(parts[1]), pid > 0, let start = UInt64(parts[2]) else { return nil }
        self.init(boot: String(parts[0]), pid: pid, start: start)
    }

    var token: String { "\(boot)-\(pid)-\(start)" }

    public var description: String { token }

    /// True when this process provably no longer runs: another boot, no such pid, or the pid now
    /// belongs to a process that started at another time. False when it may still run.
    public var isProvablyGone: Bool {
        if boot != Self.currentBoot() { return true }
        guard let start = Self.startTime(of: pid) else { return kill(pid, 0) != 0 && errno == ESRCH }
        return start != self.start
    }

    static func currentBoot() -> String {
        guard let text = readSmallFile("/proc/sys/kernel/random/boot_id") else { return "00000000" }
        let hex = text.filter(\.isHexDigit)
        return hex.count >= 8 ? String(hex.prefix(8)) : "00000000"
    }

    static func startTime(of pid: Int32) -> UInt64? {
        guard let text = readSmallFile("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // Fields after the command name start at field 3 (state); start time is field 22.
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }
}
