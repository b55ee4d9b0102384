#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A daemon's liveness record: `heartbeat/<program>.<instance>.json` below the spool root
/// (format version 1, see `docs/spool-format.md`).
///
/// A daemon replaces its file at start, every ``intervalSeconds`` and, with state `stopped`, at
/// a clean stop. The file is liveness only: it is staged in `tmp/` and renamed into place
/// (readers never see half of it) but never `fsync`ed, and a crash may leave an older one. A
/// daemon is live while its state is `running` and ``updatedAt`` is within 3 intervals (see
/// ``liveness(now:)``).
public struct Heartbeat: Codable, Sendable, Equatable {
    /// `spool-allocator` or `spool-notifier`.
    public var program: String
    /// The daemon's `--instance` (`[a-z0-9-]{1,32}`, `main` by default).
    public var instance: String
    public var pid: Int32
    /// `running` or `stopped`.
    public var state: String
    /// Milliseconds since the epoch.
    public var startedAt: Int64
    /// Milliseconds since the epoch.
    public var updatedAt: Int64
    public var intervalSeconds: Int
    /// Items waiting or claimed in the daemon's queue when the record was written.
    public var backlog: Int
    /// Items the daemon handled (any outcome) in the last minute and the last hour.
    public var processedLastMinute: Int
    public var processedLastHour: Int
    /// The daemon's `--version` text.
    public var version: String

    public init(program: String, instance: String, pid: Int32, state: String, startedAt: Int64, updatedAt: Int64,
                intervalSeconds: Int, backlog: Int, processedLastMinute: Int, processedLastHour: Int, version: String) {
        self.program = program
        self.instance = instance
        self.pid = pid
        self.state = state
        self.startedAt = startedAt
        self.updatedAt = updatedAt
        self.intervalSeconds = intervalSeconds
        self.backlog = backlog
        self.processedLastMinute = processedLastMinute
        self.processedLastHour = processedLastHour
        self.version = version
    }

    enum CodingKeys: String, CodingKey {
        case program, instance, pid, state, backlog, version
        case startedAt = "started_at", updatedAt = "updated_at", intervalSeconds = "interval_seconds"
        case processedLastMinute = "processed_last_minute", processedLastHour = "processed_last_hour"
    }

    /// The directory below the spool root.
    public static let directoryName = "heartbeat"

    /// Whether `instance` is a valid instance name: `[a-z0-9-]{1,32}`.
    public static func isValidInstance(_ instance: String) -> Bool {
        (1...32).contains(instance.utf8.count) && instance.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }
    }

    /// The file name, `<program>.<instance>.json`.
    public var fileName: String { "\(program).\(instance).json" }

    /// What a reader concludes from the record.
    public enum Liveness: String, Sendable, Codable {
        /// Running, and refreshed within 3 intervals.
        case live
        /// Says running, but not refreshed for 3 intervals: hung, stopped (SIGSTOP) or killed.
        case stale
        /// Stopped cleanly.
        case stopped
    }

    /// ``Liveness`` at `now` (milliseconds). Never traps, whatever the record's numbers.
    public func liveness(now: Int64) -> Liveness {
        guard state == "running" else { return .stopped }
        let (age, overflow) = now.subtractingReportingOverflow(updatedAt)
        return !overflow && age <= Int64(min(max(intervalSeconds, 1), Self.intervalLimit)) * 3000 ? .live : .stale
    }

    /// The longest interval a daemon uses (`SPOOL_HEARTBEAT_SECONDS` at most 3600).
    public static let intervalLimit = 3600

    /// The latest time a record may carry: the year 9999, in milliseconds.
    static let latestTime: Int64 = 253_402_300_799_999

    /// Whether every value is one a daemon writes: names as ``publishHeartbeat(_:)`` requires,
    /// a positive pid, an interval of 1 to 3600 s, times from 1970 to 9999, counts from 0 (backlog
    /// from -1) to `Int32.max`, and a version of 1 to 128 printable ASCII characters. A record
    /// planted by a spool-group member with other values is not shown: huge numbers would
    /// overflow the liveness and rate arithmetic (and trap, in `stats` and in a daemon's start),
    /// and control characters in the version would reach an operator's terminal and the
    /// Prometheus file.
    public var isPlausible: Bool {
        let counts = 0...Int(Int32.max), times: ClosedRange<Int64> = 0...Self.latestTime
        return Names.isSafeComponent(program) && Self.isValidInstance(instance) && pid > 0
            && (1...Self.intervalLimit).contains(intervalSeconds) && times.contains(startedAt) && times.contains(updatedAt)
            && (-1...Int(Int32.max)).contains(backlog) && counts.contains(processedLastMinute) && counts.contains(processedLastHour)
            && (1...128).contains(version.utf8.count) && version.utf8.allSatisfy { (0x20...0x7e).contains($0) }
    }

    /// The canonical bytes of the file: one line of JSON with sorted keys.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(((try? encoder.encode(self)) ?? Data("{}".utf8)) + Data("\n".utf8))
    }
}

extension Spool {
    /// Replaces `heartbeat/<program>.<instance>.json` with `heartbeat`: written to a fresh file in
    /// `tmp/` (mode 0640: the spool group reads it), renamed into `heartbeat/` (created if
    /// missing, so a removed directory comes back at the next beat). No `fsync`: liveness only.
    ///
    /// - Throws: ``SpoolError`` (a full disk, a removed spool); nothing is left in `tmp/` then.
    public func publishHeartbeat(_ heartbeat: Heartbeat) throws(SpoolError) {
        guard Heartbeat.isValidInstance(heartbeat.instance), Names.isSafeComponent(heartbeat.program) else {
            throw .invalidName(heartbeat.fileName)
        }
        let directory = try root.subdirectory(Heartbeat.directoryName, create: true)
        let name = "heartbeat.\(ItemID.generate().rawValue).\(getpid())"
        let fd: Int32
        do { fd = try configuration.calls.open(staging.descriptor, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o640) } catch {
            throw .system(operation: "create", path: staging.child(name), error)
        }
        do throws(SpoolError) {
            do throws(SpoolError) { try staging.writeAll(fd, heartbeat.encoded(), path: staging.child(name)) } catch {
                try? configuration.calls.close(fd)
                throw error
            }
            do { try configuration.calls.close(fd) } catch { throw SpoolError.system(operation: "close", path: staging.child(name), error) }
            try staging.move(name, to: directory, as: heartbeat.fileName, operation: "publish heartbeat")
        } catch {
            try? configuration.calls.unlink(staging.descriptor, name, 0)
            throw error
        }
    }

    /// Every heartbeat file in `heartbeat/`, by file name; never creates or writes anything.
    /// A file that does not decode, is not a regular file, whose values are not plausible
    /// (``Heartbeat/isPlausible``: a program or instance that is not a valid name among them) or
    /// whose program and instance do not match its file name is counted in `unreadable`; so is
    /// `heartbeat/` itself when it is not a directory (no record is read then).
    public func heartbeats() throws(SpoolError) -> (records: [Heartbeat], unreadable: Int) {
        let directory: Directory
        do { directory = try root.subdirectory(Heartbeat.directoryName, create: false) } catch .notFound {
            return ([], 0)
        } catch .unsafePath {
            return ([], 1)  // a FIFO, a symlink or a file in its place: counted, never followed
        }
        var records: [Heartbeat] = []
        var unreadable = 0
        for name in try directory.names().sorted() where name.hasSuffix(".json") {
            guard let bytes = try? directory.readFile(name, limit: 64 << 10),
                  let record = try? JSONDecoder().decode(Heartbeat.self, from: Data(bytes)),
                  record.fileName == name, record.isPlausible else {
                unreadable += 1
                continue
            }
            records.append(record)
        }
        return (records, unreadable)
    }
}
