#if canImport(Glibc)
import Glibc
#endif
import Logging
import Spool
import Synchronization

/// A daemon's heartbeat file and `STATUS=` line, refreshed from its supervisor.
///
/// ``start()`` writes `heartbeat/<program>.<instance>.json` (see ``Heartbeat``) and sends
/// `STATUS=backlog 12, 340 decisions/min, instance main` with sd_notify; ``tick()``, called every
/// supervisor round, does both again once ``interval`` has passed; ``stop()`` writes the record with
/// state `stopped`. A heartbeat that cannot be written (a full disk, the spool's `tmp/` removed)
/// never stops or slows the daemon: the first failure is logged (error), later ones are not
/// until a write succeeds again (logged at notice), and the next beat simply tries again.
public final class DaemonHeartbeat: Sendable {
    let spool: Spool
    let identity: DaemonIdentity
    let notifier: SystemdNotifier
    let logger: Logger
    /// What one processed item is, for `STATUS=`: `decisions` or `deliveries`.
    let unit: String
    /// How often the record is refreshed.
    public let interval: Duration
    let backlog: @Sendable () throws -> Int
    let throughput: ThroughputCounter
    let startedAt = Clock.nowMilliseconds()
    private let lastBeat = Atomic<Int64>(0)
    private let failing = Atomic<Bool>(false)

    /// A heartbeat for the daemon `identity` on `spool`; `backlog` counts its queue's waiting and
    /// claimed items, `throughput` its processed ones.
    public init(spool: Spool, identity: DaemonIdentity, notifier: SystemdNotifier, logger: Logger, unit: String,
                interval: Duration, backlog: @escaping @Sendable () throws -> Int, throughput: ThroughputCounter) {
        self.spool = spool
        self.identity = identity
        self.notifier = notifier
        self.logger = logger
        self.unit = unit
        self.interval = interval
        self.backlog = backlog
        self.throughput = throughput
    }

    /// Most items a heartbeat counts in its queue's backlog (a listing of every bucket stops
    /// there): a larger backlog is reported as this many.
    public static let backlogLimit = 1_000_000

    /// The interval from `SPOOL_HEARTBEAT_SECONDS` (1 to 3600; default 10): tests shorten it.
    public static func interval(environment: [String: String]) -> Duration {
        guard let text = environment["SPOOL_HEARTBEAT_SECONDS"], let seconds = Int(text), (1...3600).contains(seconds) else {
            return .seconds(10)
        }
        return .seconds(seconds)
    }

    /// Writes the first record and status line. If the file shows another process of this
    /// program and instance still live (its heartbeat fresh, its pid running), warns first: two
    /// daemons with one instance name overwrite each other's heartbeat, and `stats` shows one.
    public func start() {
        let now = Clock.nowMilliseconds()
        if let other = (try? spool.heartbeats())?.records.first(where: { $0.program == identity.program && $0.instance == identity.instance }),
           other.pid != getpid(), other.liveness(now: now) == .live, kill(other.pid, 0) == 0 || errno == EPERM {
            logger.warning("another daemon with this instance name looks alive; give each instance its own --instance",
                           metadata: ["instance": "\(identity.instance)", "other_pid": "\(other.pid)"])
        }
        beat(state: "running", now: now)
    }

    /// Writes the record and the status line again if ``interval`` has passed since the last.
    public func tick() {
        let now = Clock.nowMilliseconds()
        guard now - lastBeat.load(ordering: .relaxed) >= interval.components.seconds * 1000 else { return }
        beat(state: "running", now: now)
    }

    /// Writes the record with state `stopped` (a clean stop).
    public func stop() { beat(state: "stopped") }

    /// The status line for `backlog` and `perMinute`.
    public func statusLine(backlog: Int?, perMinute: Int) -> String {
        "backlog \(backlog.map(String.init) ?? "unknown"), \(perMinute) \(unit)/min, instance \(identity.instance)"
    }

    private func beat(state: String, now: Int64 = Clock.nowMilliseconds()) {
        lastBeat.store(now, ordering: .relaxed)
        let waiting: Int?
        do { waiting = try backlog() } catch {
            waiting = nil
        }
        let perMinute = throughput.lastMinute(now: now)
        let record = Heartbeat(program: identity.program, instance: identity.instance, pid: getpid(), state: state,
                               startedAt: startedAt, updatedAt: now, intervalSeconds: Int(interval.components.seconds),
                               backlog: waiting ?? -1, processedLastMinute: perMinute,
                               processedLastHour: throughput.lastHour(now: now), version: identity.version)
        if state == "running" { notifier.notify("STATUS=" + statusLine(backlog: waiting, perMinute: perMinute)) }
        do {
            try spool.publishHeartbeat(record)
            if failing.exchange(false, ordering: .relaxed) {
                logger.notice("heartbeat written again", metadata: ["file": "\(Heartbeat.directoryName)/\(record.fileName)"])
            }
        } catch {
            if !failing.exchange(true, ordering: .relaxed) {
                logger.error("cannot write the heartbeat file; the daemon keeps working, stats will show it stale",
                             metadata: ["file": "\(Heartbeat.directoryName)/\(record.fileName)", "error": "\(error)"])
            }
        }
    }
}
