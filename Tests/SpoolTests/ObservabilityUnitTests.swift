import Foundation
import Intake
import Logging
import Testing
@testable import DaemonRuntime
@testable import Spool
@testable import spoolctl

/// The pieces of issue 10's observability, without processes: the throughput ring, the log line
/// forms, `JOURNAL_STREAM`, heartbeat liveness, the Prometheus text and the index lag.
@Suite struct ObservabilityUnitTests {
    /// Against a plain list of (time, count) events, over random times spread across two hours:
    /// the ring's windows count exactly the events in the current second (minute) and the 59
    /// before it, whatever laps the ring made.
    @Test(arguments: [1, 2, 3, 4, 5])
    func throughputWindowsMatchAPlainCount(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        let counter = ThroughputCounter()
        var events: [(Int64, Int)] = []
        var now: Int64 = 1_795_000_000_000
        for _ in 0..<2000 {
            now += Int64.random(in: 0...4000, using: &random)
            let count = Int.random(in: 1...20, using: &random)
            counter.record(count, now: now)
            events.append((now, count))
            if Int.random(in: 0..<50, using: &random) == 0 {
                let second = now / 1000, minute = now / 60_000
                let minuteSum = events.filter { second - $0.0 / 1000 < 60 }.reduce(0) { $0 + $1.1 }
                let hourSum = events.filter { minute - $0.0 / 60_000 < 60 }.reduce(0) { $0 + $1.1 }
                #expect(counter.lastMinute(now: now) == minuteSum)
                #expect(counter.lastHour(now: now) == hourSum)
            }
        }
        #expect(counter.lastMinute(now: now + 61_000) == 0, "a minute later nothing is left of the last minute")
        #expect(counter.lastHour(now: now + 3_601_000) == 0)
    }

    @Test func throughputCountsConcurrentRecordsExactly() async {
        let counter = ThroughputCounter()
        let now: Int64 = 1_795_000_000_000
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { for _ in 0..<5000 { counter.record(1, now: now) } } }
        }
        #expect(counter.lastMinute(now: now) == 40_000)
        #expect(counter.lastHour(now: now) == 40_000)
    }

    @Test func journalLinesCarryTheSyslogPriorityAndNoTimestamp() {
        let handler = LineLogHandler(label: "allocator", logLevel: .trace, format: .journal)
        let expected: [(Logger.Level, Int)] = [(.critical, 2), (.error, 3), (.warning, 4), (.notice, 5), (.info, 6), (.debug, 7), (.trace, 7)]
        for (level, priority) in expected {
            #expect(handler.line(level: level, message: "unit assigned", metadata: ["unit": "A-1", "request": "r1"])
                    == "<\(priority)>unit assigned request=r1 unit=A-1\n")
        }
        #expect(handler.line(level: .error, message: "two\nlines", metadata: ["error": "a\nb"]) == "<3>two\\nlines error=a\\nb\n",
                "an event stays one line")
    }

    @Test func terminalLinesPutTheMessageFirst() {
        let handler = LineLogHandler(label: "allocator", logLevel: .info, format: .terminal)
        #expect(handler.line(level: .info, message: "unit assigned", metadata: ["request": "r1"], now: 0)
                == "1970-01-01T00:00:00Z info allocator: unit assigned request=r1\n")
        #expect(handler.line(level: .info, message: "ready", metadata: [:], now: 0) == "1970-01-01T00:00:00Z info allocator: ready\n")
    }

    @Test func journalStreamMustNameStandardError() {
        #expect(JournalStream.parse("2049:12345")! == (2049, 12345))
        for bad in ["", "1", "1:", ":1", "a:1", "1:2:3", "-1:2"] { #expect(JournalStream.parse(bad) == nil, "\(bad)") }
        #expect(!JournalStream.isStandardError(environment: [:]))
        #expect(!JournalStream.isStandardError(environment: ["JOURNAL_STREAM": "0:0"]))
        var info = stat()
        #expect(fstat(2, &info) == 0)
        #expect(JournalStream.isStandardError(environment: ["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino)"]))
    }

    @Test func instanceNames() {
        for good in ["main", "a", "blue-2", String(repeating: "x", count: 32)] { #expect(DaemonIdentity(program: "spool-allocator", instance: good) != nil) }
        for bad in ["", "Main", "a_b", "a.b", "../x", "a b", String(repeating: "x", count: 33), "ä"] {
            #expect(DaemonIdentity(program: "spool-allocator", instance: bad) == nil, "\(bad)")
        }
        #expect(DaemonIdentity(program: "spool-allocator")!.logLabel("allocator") == "allocator")
        #expect(DaemonIdentity(program: "spool-allocator", instance: "blue")!.logLabel("allocator") == "allocator@blue")
    }

    @Test func heartbeatLiveness() {
        var beat = Heartbeat(program: "spool-allocator", instance: "main", pid: 1, state: "running", startedAt: 0, updatedAt: 100_000,
                             intervalSeconds: 10, backlog: 0, processedLastMinute: 0, processedLastHour: 0, version: "1")
        #expect(beat.liveness(now: 100_000) == .live)
        #expect(beat.liveness(now: 130_000) == .live)
        #expect(beat.liveness(now: 130_001) == .stale)
        beat.state = "stopped"
        #expect(beat.liveness(now: 100_000) == .stopped)
    }

    @Test func heartbeatsRoundTripAndBadFilesAreCounted() throws {
        let (directory, spool) = try makeSpool()
        _ = directory
        let beat = Heartbeat(program: "spool-notifier", instance: "blue", pid: 7, state: "running", startedAt: 1, updatedAt: 2,
                             intervalSeconds: 10, backlog: 3, processedLastMinute: 4, processedLastHour: 5, version: "v \"1\"")
        try spool.publishHeartbeat(beat)
        try spool.publishHeartbeat(beat)  // replaced, not added
        try Data("{".utf8).write(to: URL(fileURLWithPath: spool.path + "/heartbeat/spool-allocator.main.json"))
        // A group member's file whose program holds a line break (a valid file name): not shown.
        var odd = beat
        odd.program = "x\ny"
        try Data(odd.encoded()).write(to: URL(fileURLWithPath: spool.path + "/heartbeat/x\ny.blue.json"))
        let read = try spool.heartbeats()
        #expect(read.records == [beat])
        #expect(read.unreadable == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.path + "/tmp").isEmpty, "nothing left staged")
        var bad = beat
        bad.instance = "../x"
        #expect(throws: SpoolError.self) { try spool.publishHeartbeat(bad) }
    }

    @Test func prometheusEscapesLabelValuesAndHelp() {
        var family = PrometheusTextfile.Family("selfstorage_x", "help with \\ and\nnewline")
        family.add(1, [("version", "a\"b\\c\nd")])
        family.add(0.5)
        let text = PrometheusTextfile(families: [family, PrometheusTextfile.Family("selfstorage_empty", "none")]).render()
        #expect(text == """
            # HELP selfstorage_x help with \\\\ and\\nnewline
            # TYPE selfstorage_x gauge
            selfstorage_x{version="a\\"b\\\\c\\nd"} 1
            selfstorage_x 0.5

            """)
    }

    /// The textfile replaces its target whole; a temporary file a killed run left under this
    /// pid's name does not block the next write (it used to fail with EEXIST, exit 73).
    @Test func prometheusWriteIsAtomicAndSurvivesALeftoverTemporary() throws {
        let directory = TemporaryDirectory("prom")
        let target = directory.sub("x.prom")
        try PrometheusTextfile.write("a 1\n", to: target)
        try Data("half".utf8).write(to: URL(fileURLWithPath: directory.sub(".x.prom.\(getpid()).tmp")))
        try PrometheusTextfile.write("a 2\n", to: target)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "a 2\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["x.prom"])
        #expect(throws: IntakeError.self) { try PrometheusTextfile.write("a 3\n", to: directory.sub("missing/x.prom")) }
    }

    /// The lag is the live segment's unread bytes, and every later segment; a caught-up index
    /// lags by nothing, also once its segment was sealed after it read it.
    @Test func journalLagCountsWhatTheIndexHasNotRead() throws {
        let (directory, spool) = try makeSpool()
        _ = directory
        var configuration = Journal.Configuration()
        configuration.maxSegmentBytes = 1 << 30
        let journal = try Journal(spool: spool, configuration: configuration)
        #expect(try spool.journalLag(from: .start) == Spool.JournalLag())
        let first = try journal.append([Array(repeating: 1, count: 100)], durability: .durable)
        let end = try journal.read(from: .start) { _ in }.end
        let files = try spool.journalSegmentFiles()
        let fromStart = try spool.journalLag(from: .start)
        #expect(fromStart == Spool.JournalLag(segments: 1, bytes: 108), "\(fromStart) \(files)")
        #expect(try spool.journalLag(from: first) == Spool.JournalLag(segments: 1, bytes: 108))
        #expect(try spool.journalLag(from: end) == Spool.JournalLag())
        try journal.rotate()
        let sealedLag = try spool.journalLag(from: end)
        let sealedFiles = try spool.journalSegmentFiles()
        #expect(sealedLag == Spool.JournalLag(), "sealed after it was read: nothing left: \(sealedLag) \(end) \(sealedFiles)")
        _ = try journal.append([Array(repeating: 2, count: 50)], durability: .durable)
        let lag = try spool.journalLag(from: end)
        #expect(lag.segments == 1 && lag.bytes == 58, "\(lag)")
        #expect(try spool.journalSegmentFiles().count == 2)
    }
}
