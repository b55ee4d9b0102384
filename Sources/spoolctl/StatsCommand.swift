#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import DaemonRuntime
import Foundation
import Intake
import Rentals
import Spool

/// `spoolctl stats`: queue depths, the oldest waiting item's age, rates, the breaker, dead
/// letters, quarantined files, the index's lag behind the journal, the daemons' liveness and
/// the journal's size, as a table, `--json`, a Prometheus textfile (`--prometheus FILE`) or a
/// live view (`--watch`).
///
/// Read-only and cheap: lists the queue directories and the journal, reads the heartbeat files
/// and the breaker's record, and asks the status index (read-only connection) for its position;
/// it never creates, locks or writes anything in the spool, so it can run every minute beside
/// the daemons. Anyone who may run `spoolctl` may run it (as `queues`): it reports counts, sizes,
/// times and daemon identities, no request data. `--prometheus` needs daemon rights (root, the
/// spool user, operators; 77 otherwise), and a restricted (setgid) `spoolctl` of an operator
/// gives up the spool group's rights before it creates the file, so the file is written with
/// the operator's own rights, never the group's (which may write the spool).
struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show queue depths, rates, the breaker, dead letters, corrupt files, index lag, daemon liveness and journal size.",
        discussion: """
            Rates come from the daemons' heartbeat files (heartbeat/ in the spool), summed over the \
            live instances. --prometheus FILE writes the node_exporter textfile format atomically \
            (temporary file in FILE's directory, fsync, rename); only root, the spool user and \
            operators may (an operator's file is written with the operator's own rights). --watch redraws the view every \
            --interval seconds until interrupted; it needs a terminal on standard output (exit 64 \
            otherwise: use --json or --prometheus from scripts).
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("prometheus"), help: ArgumentHelp("Write the metrics in the node_exporter textfile format to FILE.", valueName: "FILE"))
    var prometheusFile: String?

    @Flag(help: "Redraw the view every --interval seconds (a terminal only).")
    var watch = false

    @Option(help: ArgumentHelp("Seconds between redraws with --watch (0.5 to 3600).", valueName: "S"))
    var interval: Double?

    func validate() throws {
        if watch, prometheusFile != nil || global.json {
            throw ValidationError("--watch draws a view for a terminal; it does not combine with --json or --prometheus")
        }
        if let interval {
            guard watch else { throw ValidationError("--interval is for --watch") }
            guard interval >= 0.5, interval <= 3600 else { throw ValidationError("--interval must be between 0.5 and 3600 seconds") }
        }
    }

    func run() throws {
        // Writing a file is the metrics timer's job: root, the spool user and operators only.
        if prometheusFile != nil { try global.requireDaemonRights(to: "write the metrics file (--prometheus)") }
        let configuration = try global.configuration()
        if watch, isatty(1) == 0 {
            throw Failure(IntakeError(.usage, "--watch needs a terminal on standard output; use --json or --prometheus FILE in scripts"), json: false)
        }
        let spool: Spool
        do { spool = try Spool(path: configuration.spoolRoot, create: false) } catch {
            throw Failure(IntakeError(error, doing: "opening the spool at \(configuration.spoolRoot)"), json: global.json)
        }
        if watch { return try watchLoop(spool) }
        let report = try snapshot(spool)
        if let prometheusFile {
            try dropSpoolGroupRights()
            do { try PrometheusTextfile.write(report.prometheus.render(), to: prometheusFile) } catch {
                throw Failure(error, json: global.json)
            }
            if global.json { try printJSON(report) }
            return
        }
        if global.json { return try printJSON(report) }
        try emit(Self.render(report))
    }

    private func snapshot(_ spool: Spool) throws -> StatsReport {
        try operating(global, "reading the spool's statistics") { try StatsReport.collect(spool: spool) }
    }

    /// In restricted mode, gives up the spool group for good: `setregid` with the real group sets
    /// the real, effective and (the real one being set) saved group ids.
    private func dropSpoolGroupRights() throws {
        guard SpoolProcess.isRestricted else { return }
        let group = getgid()
        guard setregid(group, group) == 0, getegid() == group else {
            throw Failure(IntakeError(.notPermitted, "cannot give up the spool group's rights before writing the file: \(errnoDescription(errno))"),
                          json: global.json)
        }
    }

    /// Redraws until SIGINT or SIGTERM; exits 0 then, 74 when the terminal cannot be written.
    private func watchLoop(_ spool: Spool) throws {
        let stop = StopSignal()
        stop.triggerOnTermination()
        let pause = Duration.milliseconds(Int64((interval ?? 2) * 1000))
        while !stop.isTriggered {
            let report = try snapshot(spool)
            // Home, clear to the end: one write per frame, so a frame is never half drawn.
            try emit("\u{1B}[H\u{1B}[2J" + "spoolctl stats, every \(interval ?? 2) s (Ctrl-C to quit) — \(Timestamp(milliseconds: report.generatedAt))\n\n"
                     + Self.render(report))
            stop.wait(timeout: pause)
        }
    }

    /// The human view: two tables and a few lines.
    static func render(_ report: StatsReport) -> String {
        var lines: [String] = []
        let queueRows = report.queues.keys.sorted().map { name -> [String] in
            let queue = report.queues[name]!
            return [name, "\(queue.ready)", "\(queue.deferred)", "\(queue.active)", "\(queue.dead)",
                    queue.oldestWaitingAgeSeconds.map(duration) ?? "-"]
        }
        lines.append(Table(headers: ["QUEUE", "READY", "DEFERRED", "ACTIVE", "DEAD", "OLDEST WAITING"], rows: queueRows).render())
        lines.append("")
        if report.daemons.isEmpty {
            lines.append("daemons: no heartbeat files (no daemon has run on this spool since heartbeats were added)")
        } else {
            let rows = report.daemons.map { daemon in
                [daemon.program, daemon.instance, daemon.liveness, "\(daemon.pid)", duration(daemon.heartbeatAgeSeconds) + " ago",
                 daemon.backlog < 0 ? "?" : "\(daemon.backlog)", "\(daemon.processedLastMinute)", "\(daemon.processedLastHour)", daemon.version]
            }
            lines.append(Table(headers: ["DAEMON", "INSTANCE", "STATE", "PID", "HEARTBEAT", "BACKLOG", "LAST MIN", "LAST HOUR", "VERSION"],
                               rows: rows).render())
        }
        lines.append("")
        let rates = report.rates.keys.sorted().map { program in
            let rate = report.rates[program]!
            return "\(program) \(rate.processedLastMinute)/min, \(rate.processedLastHour)/h (\(rate.liveInstances) live)"
        }
        lines.append("rates (heartbeats of live daemons): " + rates.joined(separator: "; "))
        if report.breaker.state == "open", let openedAt = report.breaker.openedAt {
            lines.append("breaker: open since \(Timestamp(milliseconds: openedAt)) (spoolctl queues says why)")
        } else {
            lines.append("breaker: \(report.breaker.state)")
        }
        lines.append("dead letters: \(report.deadLetters)" + (report.deadLetters > 0 ? " (spoolctl dead list --queue Q)" : ""))
        lines.append("corrupt files: \(report.corruptFiles)" + (report.corruptFiles > 0 ? " (in corrupt/ of the spool)" : ""))
        lines.append("journal: \(report.journal.segments) segment\(report.journal.segments == 1 ? "" : "s") (\(report.journal.sealedSegments) sealed), \(bytes(report.journal.bytes))")
        if report.index.readable, let lag = report.index.lagBytes, let segments = report.index.lagSegments {
            lines.append("index lag: \(bytes(lag)) in \(segments) segment\(segments == 1 ? "" : "s") behind the journal (projected to \(report.index.position ?? "?"))")
        } else {
            lines.append("index: unreadable (\(report.index.error ?? "unknown error")); the next daemon or reconcile rebuilds it")
        }
        if report.heartbeatFilesUnreadable > 0 { lines.append("heartbeat files not shown (they do not decode, or hold values no daemon writes: heartbeat/ in the spool): \(report.heartbeatFilesUnreadable)") }
        return lines.joined(separator: "\n")
    }

    static func duration(_ seconds: Double) -> String {
        if seconds < 60 { return "\(Int(seconds)) s" }
        if seconds < 3600 { return "\(Int(seconds / 60)) min" }
        if seconds < 172_800 { return "\(Int(seconds / 3600)) h" }
        return "\(Int(seconds / 86400)) d"
    }

    static func bytes(_ count: Int64) -> String {
        if count < 1024 { return "\(count) B" }
        let units = ["KiB", "MiB", "GiB", "TiB"]
        var value = Double(count) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return String(format: "%.1f", value) + " " + units[unit]
    }
}
