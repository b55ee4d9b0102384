import Foundation
import Testing
@testable import Spool

/// What a spool-group member (the spool user, whose hooks and daemons handle customer data) can
/// plant for `spoolctl stats` and the daemons to read: heartbeat records with values no daemon
/// writes, and a FIFO in place of the status index. Nothing of it may crash, hang or lie in
/// `stats`, nor stop a daemon. Each command runs under `timeout`, so a hang fails the test
/// (exit 124) instead of blocking the suite.
@Suite(.serialized) struct StatsHostileSpoolTests {
    /// Writes `fields` (JSON values by key) over a plausible record as `heartbeat/<program>.<instance>.json`.
    static func plant(_ spool: String, program: String = "spool-allocator", instance: String, _ fields: [String: String]) throws {
        var record = ["program": "\"\(program)\"", "instance": "\"\(instance)\"", "pid": "1", "state": "\"running\"",
                      "started_at": "0", "updated_at": "\(Clock.nowMilliseconds())", "interval_seconds": "10", "backlog": "0",
                      "processed_last_minute": "0", "processed_last_hour": "0", "version": "\"x\""]
        record.merge(fields) { $1 }
        let text = "{" + record.keys.sorted().map { "\"\($0)\":\(record[$0]!)" }.joined(separator: ",") + "}"
        try FileManager.default.createDirectory(atPath: spool + "/heartbeat", withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: "\(spool)/heartbeat/\(program).\(instance).json"))
    }

    func stats(_ system: SystemFixture, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        try ChildProcess("/usr/bin/timeout", ["-s", "KILL", "20", "\(productsDirectory())/spoolctl", "stats"] + arguments, environment: system.environment).finish()
    }

    /// Numbers that overflowed the liveness test and the rate sums (the old `stats` trapped,
    /// exit 132), and versions with a raw line break or an escape sequence (they reached the
    /// Prometheus file and the terminal): each such file is counted unreadable, the rest shown.
    @Test func implausibleHeartbeatsAreCountedNotTrusted() throws {
        let system = try SystemFixture()
        _ = try Spool(path: system.spool, create: true)
        let huge = "9223372036854775807"
        try Self.plant(system.spool, instance: "a", ["interval_seconds": huge])
        try Self.plant(system.spool, instance: "b", ["updated_at": "-9223372036854775808"])
        try Self.plant(system.spool, instance: "c", ["processed_last_minute": huge])
        try Self.plant(system.spool, instance: "d", ["processed_last_minute": huge])
        try Self.plant(system.spool, instance: "e", ["version": #""v\r\nselfstorage_evil 1""#])
        try Self.plant(system.spool, instance: "f", ["version": #""\u001b]0;owned\u0007""#])
        try Self.plant(system.spool, instance: "g", ["pid": "0"])
        try Self.plant(system.spool, instance: "fine", ["version": #""spool-allocator 1.0 \"q\"""#])
        for arguments in [["--json"], [], ["--prometheus", system.directory.sub("m.prom")]] {
            let result = try stats(system, arguments)
            #expect(result.status == 0, "\(arguments): \(result.errors)")
        }
        let object = try JSONSerialization.jsonObject(with: Data(try stats(system, ["--json"]).output.utf8)) as? [String: Any]
        #expect((object?["heartbeat_files_unreadable"] as? NSNumber)?.intValue == 7, "\(String(describing: object))")
        let daemons = object?["daemons"] as? [[String: Any]]
        #expect(daemons?.compactMap { $0["instance"] as? String } == ["fine"])
        let prometheus = try String(contentsOfFile: system.directory.sub("m.prom"), encoding: .utf8)
        #expect(!prometheus.contains("evil") && !prometheus.contains("\r") && !prometheus.contains("\u{1b}"))
        #expect(prometheus.contains(#"version="spool-allocator 1.0 \"q\"""#), "\(prometheus)")
    }

    /// A daemon reads the heartbeat of its own name at start (to warn of a twin); a planted one
    /// with a huge interval made it trap there, at every restart. It must start and beat.
    @Test func aPlantedHeartbeatDoesNotStopTheDaemon() throws {
        let system = try SystemFixture()
        _ = try Spool(path: system.spool, create: true)
        try Self.plant(system.spool, instance: "main", ["interval_seconds": "9223372036854775807", "updated_at": "0"])
        try system.start("spool-allocator", environment: ["SPOOL_HEARTBEAT_SECONDS": "1"])
        let own = system.eventually(30) {
            (try? Spool(path: system.spool).heartbeats().records.first?.intervalSeconds) == 1
        }
        #expect(own, "the daemon replaced the planted record with its own")
        let stopped = system.stopReporting("spool-allocator")
        #expect(stopped.status == 0, "\(stopped.errors)")
    }

    /// `heartbeat/` replaced by a FIFO, a symlink or a file: `stats` reports everything else and
    /// counts it (the old one failed whole, exit 74, so the metrics timer wrote nothing).
    @Test(arguments: ["fifo", "symlink", "file"])
    func aHeartbeatDirectoryThatIsNoDirectoryIsCounted(kind: String) throws {
        let system = try SystemFixture()
        _ = try Spool(path: system.spool, create: true)
        let path = system.spool + "/heartbeat"
        switch kind {
        case "fifo": #expect(mkfifo(path, 0o660) == 0)
        case "symlink": #expect(symlink(system.directory.path, path) == 0)
        default: try Data("x".utf8).write(to: URL(fileURLWithPath: path))
        }
        let result = try stats(system, ["--json"])
        #expect(result.status == 0, "\(result.errors)")
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        #expect((object?["heartbeat_files_unreadable"] as? NSNumber)?.intValue == 1, "\(result.output)")
    }

    /// SQLite's open(2) of a FIFO blocks until a writer comes: `stats` must report the index
    /// unreadable instead of waiting for ever (the old one hung).
    @Test func aFIFOForTheIndexIsReportedNotWaitedFor() throws {
        let system = try SystemFixture()
        #expect(try system.ctl("reconcile").status == 0)  // makes the index
        let name = "status.sqlite", path = system.spool + "/index/status.sqlite"
        _ = unlink(path)
        #expect(mkfifo(path, 0o660) == 0)
        let result = try stats(system, ["--json"])
        #expect(result.status == 0, "\(result.errors)")
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        let index = object?["index"] as? [String: Any]
        #expect(index?["readable"] as? Bool == false, "\(result.output)")
        #expect((index?["error"] as? String)?.contains(name) == true, "\(result.output)")
    }
}
