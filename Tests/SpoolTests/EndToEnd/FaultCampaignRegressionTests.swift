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

    /// Two submits with the same idempotency key at once (a client retrying while its first
    /// submit is slow): B reads no key record, A records the key, A fails to queue (`EIO`, exit
    /// 74), then B finds A's record. B must not print A's id with exit 0 unless that request is
    /// queued: it queues it, as a retry does. Before, B exited 0 with an id that was nowhere (an
    /// acknowledged request lost). The interleaving is forced with a preload library built here:
    /// B stops itself (`SIGSTOP`) at its `linkat` of the key record; A's `renameat` fails.
    @Test func concurrentSubmitWithTheSameKeyNeverAcknowledgesAnUnqueuedRequest() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "S")])
        let source = system.directory.sub("race.c"), library = system.directory.sub("race.so")
        try Data(Self.raceShim.utf8).write(to: URL(fileURLWithPath: source))
        let compiler = ["/usr/bin/cc", "/usr/bin/gcc", "/opt/swift/usr/bin/clang"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let cc = try ChildProcess(try #require(compiler), ["-shared", "-fPIC", "-o", library, source, "-ldl"]).finish()
        try #require(cc.status == 0, "\(cc.errors)")
        let submit = ["submit", "--customer", "race@example.com", "--contact", "race@example.com", "--size", "S",
                      "--from", "2027-01-01", "--months", "1", "--idempotency-key", "racekey", "--json"]
        let b = try ChildProcess("spoolctl", submit, environment: system.environment.merging(
            ["LD_PRELOAD": library, "RACE_STOP_AT_LINK": "-racekey"]) { $1 })
        let pid = b.process.processIdentifier
        let stopped = system.eventually(30) {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            return stat[stat.index(close, offsetBy: 2)] == "T"
        }
        try #require(stopped, "B never reached its link of the key record")
        let a = try ChildProcess("spoolctl", submit, environment: system.environment.merging(
            ["LD_PRELOAD": library, "RACE_FAIL_RENAMEAT": "1"]) { $1 }).finish()
        #expect(a.status == 74, "A: \(a.status) \(a.errors)")
        kill(pid, SIGCONT)
        let result = b.finish()
        guard result.status == 0 else { return }  // not acknowledged: nothing promised
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        let id = try #require(object?["id"] as? String)
        let status = try system.ctl("status", id, "--json")
        #expect(status.status == 0, "B acknowledged \(id) but it is nowhere: \(status.errors)")
    }

    static let raceShim = #"""
    #define _GNU_SOURCE
    #include <dlfcn.h>
    #include <errno.h>
    #include <signal.h>
    #include <stdlib.h>
    #include <string.h>
    static const char *stop_at;
    static int fail_rename, stopped;
    __attribute__((constructor)) static void init(void) {
        stop_at = getenv("RACE_STOP_AT_LINK");
        fail_rename = getenv("RACE_FAIL_RENAMEAT") != NULL;
    }
    int linkat(int d1, const char *a, int d2, const char *b, int f) {
        int (*next)(int, const char *, int, const char *, int) = dlsym(RTLD_NEXT, "linkat");
        if (stop_at && !stopped && strstr(b, stop_at)) { stopped = 1; raise(SIGSTOP); }
        return next(d1, a, d2, b, f);
    }
    int renameat(int d1, const char *a, int d2, const char *b) {
        int (*next)(int, const char *, int, const char *) = dlsym(RTLD_NEXT, "renameat");
        if (fail_rename) { errno = EIO; return -1; }
        return next(d1, a, d2, b);
    }
    """#
}
