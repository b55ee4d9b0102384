import Foundation
import Testing

/// Holes the faults campaign (`scripts/torture.d/faults`, libfiu in the real binaries) found,
/// each checked through the real executables.
@Suite struct FaultCampaignRegressionTests {
    /// A configuration file that cannot be read for an I/O reason is an I/O error (74), not bad
    /// data (65): the file may be fine, and a retry may work. For the daemons, 74 rather than
    /// 78 (a bad configuration) keeps the log honest; both are restarted by systemd.
    /// `/proc/self/mem` is a regular file whose read at offset 0 fails with a real `EIO` (as
    /// libfiu's `posix/io/rw/read` with `failinfo=5` did).
    @Test func unreadableConfigurationIsAnIOErrorNotBadData() throws {
        for arguments in [["list"], ["submit", "--customer", "a@example.com", "--contact", "a@example.com",
                                     "--size", "S", "--from", "2027-01-01", "--months", "1"], ["reconcile"]] {
            let result = try ChildProcess("spoolctl", arguments + ["--config", "/proc/self/mem"]).finish()
            #expect(result.status == 74, "\(arguments): \(result.status) \(result.errors)")
            let lines = result.errors.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains("Input/output error"), "\(result.errors)")
        }
        for daemon in ["spool-allocator", "spool-notifier"] {
            let result = try ChildProcess(daemon, ["--config", "/proc/self/mem"]).finish()
            #expect(result.status == 74, "\(daemon): \(result.status) \(result.errors)")
            #expect(result.errors.contains("Input/output error"), "\(result.errors)")
        }
    }
}
