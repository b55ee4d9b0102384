import Foundation
import Intake
import Rentals
import Spool

/// What `spoolctl stats` reports: one snapshot of the spool, taken without writing anything.
///
/// Everything is a count, a size, a time or a daemon's identity: no request id, customer or
/// error text, so the report is the same for every user allowed to run `stats` (as `queues`,
/// anyone who may run `spoolctl`). The JSON field names (``CodingKeys``) are stable; times are
/// milliseconds since the epoch, ages seconds (to the millisecond).
struct StatsReport: Encodable, Sendable {
    struct QueueStats: Encodable, Sendable {
        var ready: Int
        var deferred: Int
        var active: Int
        var dead: Int
        /// Age of the oldest item waiting (due or deferred), nil when none waits.
        var oldestWaitingAgeSeconds: Double?
        enum CodingKeys: String, CodingKey {
            case ready, deferred, active, dead
            case oldestWaitingAgeSeconds = "oldest_waiting_age_seconds"
        }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(ready, forKey: .ready)
            try container.encode(deferred, forKey: .deferred)
            try container.encode(active, forKey: .active)
            try container.encode(dead, forKey: .dead)
            try container.encode(oldestWaitingAgeSeconds, forKey: .oldestWaitingAgeSeconds)  // null, not absent
        }
    }

    struct BreakerStats: Encodable, Sendable {
        /// `closed` or `open` (`unreadable` when its record does not decode).
        var state: String
        /// When it opened; nil unless open.
        var openedAt: Int64?
        enum CodingKeys: String, CodingKey { case state, openedAt = "opened_at" }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(state, forKey: .state)
            try container.encode(openedAt, forKey: .openedAt)
        }
    }

    struct IndexStats: Encodable, Sendable {
        /// False when the index could not be opened read-only (missing, damaged, unreadable);
        /// the lag fields are then null and `error` says why.
        var readable: Bool
        /// The journal position the index has projected, `segment:offset`.
        var position: String?
        var lagBytes: Int64?
        var lagSegments: Int?
        var error: String?
        enum CodingKeys: String, CodingKey {
            case readable, position, error
            case lagBytes = "lag_bytes", lagSegments = "lag_segments"
        }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(readable, forKey: .readable)
            try container.encode(position, forKey: .position)
            try container.encode(lagBytes, forKey: .lagBytes)
            try container.encode(lagSegments, forKey: .lagSegments)
            try container.encode(error, forKey: .error)
        }
    }

    struct JournalStats: Encodable, Sendable {
        /// Bytes on disk (sealed segments compressed).
        var bytes: Int64
        var segments: Int
        var sealedSegments: Int
        enum CodingKeys: String, CodingKey { case bytes, segments, sealedSegments = "sealed_segments" }
    }

    /// Items a program's live instances handled, from their heartbeats.
    struct RateStats: Encodable, Sendable {
        var processedLastMinute: Int
        var processedLastHour: Int
        var liveInstances: Int
        enum CodingKeys: String, CodingKey {
            case processedLastMinute = "processed_last_minute", processedLastHour = "processed_last_hour"
            case liveInstances = "live_instances"
        }
    }

    struct DaemonStats: Encodable, Sendable {
        var program: String
        var instance: String
        var pid: Int32
        /// `live`, `stale` or `stopped`.
        var liveness: String
        var startedAt: Int64
        var updatedAt: Int64
        var heartbeatAgeSeconds: Double
        var intervalSeconds: Int
        var backlog: Int
        var processedLastMinute: Int
        var processedLastHour: Int
        var version: String
        enum CodingKeys: String, CodingKey {
            case program, instance, pid, liveness, backlog, version
            case startedAt = "started_at", updatedAt = "updated_at", heartbeatAgeSeconds = "heartbeat_age_seconds"
            case intervalSeconds = "interval_seconds", processedLastMinute = "processed_last_minute"
            case processedLastHour = "processed_last_hour"
        }
    }

    var generatedAt: Int64
    var queues: [String: QueueStats]
    var deadLetters: Int
    var breaker: BreakerStats
    var corruptFiles: Int
    var index: IndexStats
    var journal: JournalStats
    var rates: [String: RateStats]
    var daemons: [DaemonStats]
    var heartbeatFilesUnreadable: Int

    enum CodingKeys: String, CodingKey {
        case queues, breaker, index, journal, rates, daemons
        case generatedAt = "generated_at", deadLetters = "dead_letters", corruptFiles = "corrupt_files"
        case heartbeatFilesUnreadable = "heartbeat_files_unreadable"
    }

    /// The programs whose rates are always reported (zero without a live instance).
    static let daemonPrograms = ["spool-allocator", "spool-notifier"]

    /// Takes the snapshot of `spool` (opened without `create`). Only lists, `stat`s and reads:
    /// the index through a read-only SQLite connection (not when it is not a regular file: it is
    /// then reported unreadable), the breaker's record and the heartbeat files directly; nothing
    /// is created, locked or written.
    static func collect(spool: Spool, now: Int64 = Clock.nowMilliseconds()) throws -> StatsReport {
        var queues: [String: QueueStats] = [:]
        for name in QueueName.rentalQueues {
            let observed = try spool.observeQueue(name, now: now)
            queues[name.rawValue] = QueueStats(
                ready: observed.ready, deferred: observed.deferred, active: observed.active, dead: observed.dead,
                oldestWaitingAgeSeconds: observed.oldestWaitingEnqueuedAt.map { Double(max(0, now - $0)) / 1000 })
        }

        var breaker = BreakerStats(state: "closed", openedAt: nil)
        if let bytes = try spool.observeRecord("state", "breaker") {
            if let state = try? JSONDecoder().decode(AdmissionControl.State.self, from: Data(bytes)) {
                breaker = BreakerStats(state: state.state, openedAt: state.state == "open" ? state.openedAt : nil)
            } else {
                breaker.state = "unreadable"
            }
        }

        let segments = try spool.journalSegmentFiles()
        let journal = JournalStats(bytes: segments.reduce(0) { $0 + $1.bytes }, segments: segments.count,
                                   sealedSegments: segments.filter(\.sealed).count)

        var index = IndexStats(readable: false)
        do {
            let path = spool.path + "/index/status.sqlite"
            // SQLite's open(2) of a FIFO there would wait for a writer for ever.
            var info = stat()
            if lstat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG { throw SpoolError.unsafePath(path) }
            let status = try StatusIndex(path: path, readOnly: true)
            let position = try status.consumedPosition()
            let lag = try spool.journalLag(from: position)
            index = IndexStats(readable: true, position: position.description, lagBytes: lag.bytes, lagSegments: lag.segments)
        } catch {
            index.error = "\(error)".split(whereSeparator: \.isNewline).joined(separator: " ")
        }

        let (records, unreadable) = try spool.heartbeats()
        let daemons = records.map { record in
            DaemonStats(program: record.program, instance: record.instance, pid: record.pid, liveness: record.liveness(now: now).rawValue,
                        startedAt: record.startedAt, updatedAt: record.updatedAt,
                        heartbeatAgeSeconds: Double(max(0, now - record.updatedAt)) / 1000, intervalSeconds: record.intervalSeconds,
                        backlog: record.backlog, processedLastMinute: record.processedLastMinute,
                        processedLastHour: record.processedLastHour, version: record.version)
        }
        var rates: [String: RateStats] = [:]
        for program in Set(daemonPrograms + daemons.map(\.program)) {
            let live = daemons.filter { $0.program == program && $0.liveness == Heartbeat.Liveness.live.rawValue }
            rates[program] = RateStats(processedLastMinute: live.reduce(0) { $0 + $1.processedLastMinute },
                                       processedLastHour: live.reduce(0) { $0 + $1.processedLastHour }, liveInstances: live.count)
        }
        return StatsReport(generatedAt: now, queues: queues, deadLetters: queues.values.reduce(0) { $0 + $1.dead },
                           breaker: breaker, corruptFiles: try spool.quarantinedFileCount(), index: index, journal: journal,
                           rates: rates, daemons: daemons, heartbeatFilesUnreadable: unreadable)
    }
}
