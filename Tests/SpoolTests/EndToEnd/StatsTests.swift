import Foundation
import Testing
@testable import Spool

/// `spoolctl stats` (issue 10): its Prometheus textfile parses with the reference parser and
/// equals its `--json` of the same snapshot; it writes nothing in the spool; it fails cleanly
/// where it cannot write.
@Suite(.serialized) struct StatsTests {
    /// Python with `prometheus_client` (Debian's `python3-prometheus-client`, which
    /// `scripts/lib/ensure-toolchain.sh` installs): the system interpreter, where apt puts it.
    static let python = "/usr/bin/python3"

    /// Parses `file` with `prometheus_client`'s text parser; returns "name{k=v,…}" -> value,
    /// each family's type, and the parser's failure text.
    static func parse(_ file: String) throws -> (samples: [String: Double], types: [String: String], failure: String) {
        let script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            samples, types = {}, {}
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                types[family.name] = family.type
                for sample in family.samples:
                    labels = ",".join("%s=%s" % item for item in sorted(sample.labels.items()))
                    samples["%s{%s}" % (sample.name, labels)] = sample.value
            print(json.dumps({"samples": samples, "types": types}))
            """
        let result = try ChildProcess(python, ["-c", script, file]).finish()
        guard result.status == 0,
              let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] else {
            return ([:], [:], "python3 prometheus_client failed (exit \(result.status)): \(result.errors)")
        }
        return (object["samples"] as? [String: Double] ?? [:], object["types"] as? [String: String] ?? [:], "")
    }

    /// A spool with something in every figure: waiting and dead items, a quarantined file, a
    /// journal, an open breaker, heartbeats (one with a version that needs escaping).
    static func busySystem() throws -> SystemFixture {
        let system = try SystemFixture(settings: ["notify_hook": "exit 3", "max_attempts": "1"])
        try system.addUnits([("R-1", "S")])
        let allocator = try ChildProcess("spool-allocator", [], environment: system.environment)
        let notifier = try ChildProcess("spool-notifier", [], environment: system.environment)
        _ = try system.submit(size: "S", from: "2099-03-01", to: "2099-04-01")
        #expect(system.eventually(30) { (try? Spool(path: system.spool).queue(.notifications).counts().dead) == 1 })
        kill(allocator.process.processIdentifier, SIGTERM)
        kill(notifier.process.processIdentifier, SIGTERM)
        _ = allocator.finish()
        _ = notifier.finish()
        for index in 0..<3 { _ = try system.submit(size: "M", from: "2099-03-0\(index + 1)", to: "2099-04-01") }
        let spool = try Spool(path: system.spool)
        try Data("junk".utf8).write(to: URL(fileURLWithPath: system.spool + "/corrupt/junk.1"))
        let now = Clock.nowMilliseconds()
        try spool.publishHeartbeat(Heartbeat(program: "spool-allocator", instance: "blue", pid: 4242, state: "running", startedAt: now - 5000,
                                             updatedAt: now, intervalSeconds: 3600, backlog: 3, processedLastMinute: 17,
                                             processedLastHour: 400, version: "1.0 \"q\" \\ x"))
        try RecordDirectory(spool: spool, path: "state").write("breaker", Array(#"{"state":"open","opened_at":1795000000123,"reason":"r"}"#.utf8))
        return system
    }

    @Test func prometheusFileParsesAndEqualsTheJSON() throws {
        let system = try Self.busySystem()
        let file = system.directory.sub("metrics/self-storage.prom")
        try FileManager.default.createDirectory(atPath: system.directory.sub("metrics"), withIntermediateDirectories: true)
        let result = try system.ctl("stats", "--prometheus", file, "--json")
        #expect(result.status == 0, "\(result.errors)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        let parsed = try Self.parse(file)
        #expect(parsed.failure.isEmpty, "the parser must be there (python3-prometheus-client): \(parsed.failure)")
        let samples = parsed.samples
        #expect(samples.count > 20)
        #expect(Set(parsed.types.values) == ["gauge"], "\(parsed.types)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: system.directory.sub("metrics")) == ["self-storage.prom"],
                "no temporary file left")
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        #expect(mode == 0o644, "node_exporter (another user) reads it")

        func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }
        let queues = try #require(json["queues"] as? [String: [String: Any]])
        for (name, queue) in queues {
            for state in ["ready", "deferred", "active", "dead"] {
                #expect(samples["selfstorage_queue_items{queue=\(name),state=\(state)}"] == number(queue[state]), "\(name) \(state)")
            }
            #expect(samples["selfstorage_queue_oldest_waiting_age_seconds{queue=\(name)}"] == number(queue["oldest_waiting_age_seconds"]))
        }
        #expect(number(queues["allocation"]?["ready"]) == 3)
        #expect(number(queues["notifications"]?["dead"]) == 1)
        #expect(number(json["dead_letters"]) == 1)
        #expect(samples["selfstorage_corrupt_files{}"] == number(json["corrupt_files"]))
        #expect(number(json["corrupt_files"])! >= 1)
        let breaker = try #require(json["breaker"] as? [String: Any])
        #expect(breaker["state"] as? String == "open")
        #expect(samples["selfstorage_breaker_open{}"] == 1)
        #expect(samples["selfstorage_breaker_opened_timestamp_seconds{}"] == number(breaker["opened_at"])! / 1000)
        let journal = try #require(json["journal"] as? [String: Any])
        #expect(samples["selfstorage_journal_bytes{}"] == number(journal["bytes"]))
        #expect(samples["selfstorage_journal_segments{}"] == number(journal["segments"]))
        #expect(number(journal["bytes"])! > 0)
        let index = try #require(json["index"] as? [String: Any])
        #expect(index["readable"] as? Bool == true)
        #expect(samples["selfstorage_index_lag_bytes{}"] == number(index["lag_bytes"]))
        #expect(samples["selfstorage_index_lag_segments{}"] == number(index["lag_segments"]))
        let rates = try #require(json["rates"] as? [String: [String: Any]])
        for (program, rate) in rates {
            #expect(samples["selfstorage_processed_last_minute{program=\(program)}"] == number(rate["processed_last_minute"]))
            #expect(samples["selfstorage_processed_last_hour{program=\(program)}"] == number(rate["processed_last_hour"]))
            #expect(samples["selfstorage_live_instances{program=\(program)}"] == number(rate["live_instances"]))
        }
        #expect(number(rates["spool-allocator"]?["processed_last_minute"]) == 17, "the live blue instance's rate")
        let daemons = try #require(json["daemons"] as? [[String: Any]])
        #expect(daemons.count == 3, "allocator and notifier main (stopped), allocator blue: \(daemons)")
        for daemon in daemons {
            let labels = "instance=\(daemon["instance"]!),program=\(daemon["program"]!)"
            #expect(samples["selfstorage_daemon_up{\(labels)}"] == (daemon["liveness"] as? String == "live" ? 1 : 0))
            #expect(samples["selfstorage_daemon_running{\(labels)}"] == (daemon["liveness"] as? String == "stopped" ? 0 : 1))
            #expect(samples["selfstorage_daemon_heartbeat_timestamp_seconds{\(labels)}"] == number(daemon["updated_at"])! / 1000)
            #expect(samples["selfstorage_daemon_start_time_seconds{\(labels)}"] == number(daemon["started_at"])! / 1000)
            #expect(samples["selfstorage_daemon_backlog{\(labels)}"] == number(daemon["backlog"]))
            #expect(samples["selfstorage_daemon_processed_last_minute{\(labels)}"] == number(daemon["processed_last_minute"]))
            #expect(samples["selfstorage_daemon_processed_last_hour{\(labels)}"] == number(daemon["processed_last_hour"]))
            #expect(samples["selfstorage_daemon_info{\(labels),version=\(daemon["version"]!)}"] == 1, "the version label, unescaped")
        }
        #expect(samples["selfstorage_stats_timestamp_seconds{}"] == number(json["generated_at"])! / 1000)
        #expect(samples["selfstorage_heartbeat_files_unreadable{}"] == number(json["heartbeat_files_unreadable"]))

        let human = try system.ctl("stats")
        #expect(human.status == 0)
        for text in ["allocation", "notifications", "breaker: open", "dead letters: 1", "spool-allocator", "blue", "journal:", "index lag:"] {
            #expect(human.output.contains(text), "\(text): \(human.output)")
        }
    }

    /// Every file below the spool with its size and modification time.
    static func snapshot(_ root: String) -> [String: String] {
        var result: [String: String] = [:]
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let path = enumerator?.nextObject() as? String {
            var info = stat()
            guard lstat(root + "/" + path, &info) == 0 else { continue }
            result[path] = "\(info.st_mode) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        }
        return result
    }

    @Test func statsWritesNothingInTheSpool() throws {
        let system = try Self.busySystem()
        // A fresh spool too (no queues, journal or index yet): nothing is created for it.
        let bare = system.directory.sub("bare")
        _ = try Spool(path: bare, create: true)
        for root in [system.spool, bare] {
            let before = Self.snapshot(root)
            let result = try ChildProcess("spoolctl", ["stats", "--json", "--spool", root], environment: system.environment).finish()
            #expect(result.status == 0, "\(result.errors)")
            _ = try system.ctl("stats")
            let after = Self.snapshot(root)
            // The index's `-shm` is SQLite's shared-memory index, which every WAL reader (a
            // read-only connection too) updates with its read marks: never data, never synced.
            let changed = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] && !$0.hasSuffix("-shm") }.sorted()
            #expect(changed.isEmpty, "\(root): \(changed.map { "\($0): \(before[$0] ?? "-") -> \(after[$0] ?? "-")" })")
        }
        let missing = try ChildProcess("spoolctl", ["stats", "--spool", system.directory.sub("nothing")], environment: system.environment).finish()
        #expect(missing.status == 66, "\(missing.errors)")
        #expect(!FileManager.default.fileExists(atPath: system.directory.sub("nothing")))
    }

    @Test(arguments: [">&-", ">/dev/full", "2>&- >&-", "2>/dev/full >/dev/full"])
    func outputThatCannotBeWrittenExits74(redirection: String) throws {
        let system = try SystemFixture()
        _ = try Spool(path: system.spool, create: true)
        for arguments in [["stats"], ["stats", "--json"]] {
            let result = try OutputFailureTests.ctl(system, redirection, arguments)
            #expect(result.status == 74, "\(arguments) \(redirection): \(result.errors)")
        }
        #expect(try OutputFailureTests.ctlIntoBrokenPipe(system, descriptor: 1, ["stats", "--json"]).status == 74)
    }

    @Test func prometheusAndWatchFailCleanly() throws {
        let system = try SystemFixture()
        _ = try Spool(path: system.spool, create: true)
        let nowhere = try system.ctl("stats", "--prometheus", system.directory.sub("no/such/dir/x.prom"))
        #expect(nowhere.status == 73, "\(nowhere.errors)")
        let full = try system.ctl("stats", "--prometheus", "/dev/full/x.prom")
        #expect(full.status == 73, "\(full.errors)")
        let notTerminal = try system.ctl("stats", "--watch")
        #expect(notTerminal.status == 64 && notTerminal.errors.contains("terminal"), "\(notTerminal.errors)")
        #expect(try system.ctl("stats", "--watch", "--json").status == 64)
        #expect(try system.ctl("stats", "--interval", "5").status == 64)
        #expect(try system.ctl("stats", "--watch", "--interval", "0").status == 64)
        // The old file stays whole when a new one cannot be written.
        let file = system.directory.sub("m.prom")
        #expect(try system.ctl("stats", "--prometheus", file).status == 0)
        let written = try String(contentsOfFile: file, encoding: .utf8)
        #expect(written.hasSuffix("\n") && written.contains("selfstorage_queue_items"))
    }

    /// `--watch` on a terminal (`script` gives it one) redraws until SIGTERM, then exits 0.
    @Test func watchRedrawsUntilTerminated() throws {
        let system = try SystemFixture()
        _ = try Spool(path: system.spool, create: true)
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else {
            Issue.record("util-linux script(1) is needed for this test")
            return
        }
        let command = "SPOOL_CONFIG=\(system.configPath) SPOOL_ROOT= \(productsDirectory())/spoolctl stats --watch --interval 0.5"
        let typescript = system.directory.sub("typescript")
        let watch = try ChildProcess("/usr/bin/script", ["-qfec", command, typescript], environment: system.environment)
        func frames() -> Int { ((try? String(contentsOfFile: typescript, encoding: .utf8)) ?? "").components(separatedBy: "QUEUE").count - 1 }
        #expect(system.eventually(30) { frames() >= 3 }, "redrawn")
        for pid in descendants(of: watch.process.processIdentifier) where executable(pid)?.hasSuffix("spoolctl") == true { kill(pid, SIGTERM) }
        let result = watch.finish()
        #expect(result.status == 0, "\(result.output)")
        #expect(((try? String(contentsOfFile: typescript, encoding: .utf8)) ?? "").contains("\u{1B}[2J"))
    }
}
