import Foundation
import Logging
import Testing
@testable import DaemonRuntime
@testable import Spool
@testable import spoolctl

/// Hostile text and numbers against issue 10's log lines, Prometheus text and heartbeat records.
@Suite struct ObservabilityHostileUnitTests {
    /// journald ends a line at a NUL as at a newline, and reads the next one's `<N>` prefix: a
    /// value with a NUL must not start a second line.
    @Test func aNULDoesNotStartASecondJournalLine() {
        let handler = LineLogHandler(label: "notifier", logLevel: .trace, format: .journal)
        let line = handler.line(level: .info, message: "delivered\u{0}<0>fake", metadata: ["error": "x\u{0}<2>y"])
        #expect(line == "<6>delivered\\0<0>fake error=x\\0<2>y\n")
        #expect(!line.utf8.contains(0))
        let terminal = LineLogHandler(label: "notifier", logLevel: .trace, format: .terminal)
        #expect(!terminal.line(level: .info, message: "a\u{0}b", metadata: [:], now: 0).utf8.contains(0))
    }

    /// Escaping by `Character` missed `\r\n` (one Character, not `\n`) and a quote or backslash
    /// followed by a combining mark: a raw line break or an unescaped quote reached the file.
    @Test func prometheusEscapesEveryScalar() {
        #expect(PrometheusTextfile.escapeLabelValue("a\r\nb") == "a\r\\nb")
        #expect(PrometheusTextfile.escapeLabelValue("\"\u{301}} 1") == "\\\"\u{301}} 1")
        #expect(PrometheusTextfile.escapeLabelValue("\\\u{301}") == "\\\\\u{301}")
        #expect(PrometheusTextfile.escapeHelp("h\r\ni") == "h\r\\ni")
        var family = PrometheusTextfile.Family("selfstorage_x", "help")
        family.add(1, [("version", "v\"\u{301}} 1\r\nselfstorage_evil 1\r\n#")])
        let lines = PrometheusTextfile(families: [family]).render().split(separator: "\n")
        #expect(lines.count == 3, "\(lines)")
        #expect(!lines.contains { $0.hasPrefix("selfstorage_evil") })
    }

    /// Liveness never traps, whatever the numbers; the reader's plausibility rule keeps what a
    /// daemon writes and refuses the rest.
    @Test func heartbeatArithmeticAndPlausibility() {
        let good = Heartbeat(program: "spool-allocator", instance: "main", pid: 9, state: "running", startedAt: 1, updatedAt: 2,
                             intervalSeconds: 10, backlog: -1, processedLastMinute: 0, processedLastHour: 0,
                             version: "spool-allocator 0.0.412+g1a2b3c4d")
        #expect(good.isPlausible)
        var beat = good
        beat.updatedAt = .min
        beat.intervalSeconds = .max
        #expect(beat.liveness(now: .max) == .stale)
        beat.updatedAt = .max
        #expect(beat.liveness(now: .min) == .stale)
        let bad: [(inout Heartbeat) -> Void] = [
            { $0.intervalSeconds = 0 }, { $0.intervalSeconds = 3601 }, { $0.updatedAt = -1 }, { $0.startedAt = .max },
            { $0.pid = 0 }, { $0.backlog = -2 }, { $0.processedLastHour = Int(Int32.max) + 1 }, { $0.processedLastMinute = -1 },
            { $0.version = "" }, { $0.version = "v\n" }, { $0.version = "\u{1b}[2J" }, { $0.version = "é" },
            { $0.version = String(repeating: "v", count: 129) }, { $0.instance = "A" }, { $0.program = "a/b" },
        ]
        for (index, change) in bad.enumerated() {
            var record = good
            change(&record)
            #expect(!record.isPlausible, "case \(index)")
        }
    }
}
