#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// Logging for the programs: one line per event on stderr, with metadata (the request id among
/// it), at the level named by `SPOOL_LOG_LEVEL` (`trace` … `critical`; default `info`).
///
/// Two forms, chosen once at start-up (``LineLogHandler/Format``): under journald (stderr is the
/// stream `JOURNAL_STREAM` names, see ``JournalStream``) `<3>message key=value …`, the syslog
/// priority first so that `journalctl -p err` selects by level, without a timestamp (the journal
/// has its own); anywhere else `TIME LEVEL LABEL: message key=value …`.
///
/// Each line goes out in one `write(2)` (``StandardStream``): lines of concurrent threads do not
/// interleave, and a log line that cannot be written (stderr closed, `/dev/full`, a reader that
/// went away) is dropped; logging never stops, traps or blocks the program on a failed write.
public enum DaemonLogging {
    private static let installed = Mutex(false)

    /// Installs the stderr handler once per process (later calls only return a logger) and
    /// returns a logger labelled `label`. Also points a closed stdin, stdout or stderr at
    /// `/dev/null` (``StandardStream/reserveStandardDescriptors()``), so that no file the process
    /// opens later receives log lines.
    public static func bootstrap(_ label: String, environment: [String: String]) -> Logger {
        let level = environment["SPOOL_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
        let first = installed.withLock { done in
            defer { done = true }
            return !done
        }
        if first {
            StandardStream.reserveStandardDescriptors()
            let format: LineLogHandler.Format = JournalStream.isStandardError(environment: environment) ? .journal : .terminal
            LoggingSystem.bootstrap { name in LineLogHandler(label: name, logLevel: level, format: format) }
        }
        return Logger(label: label)
    }
}

/// A log handler that writes one line per event to stderr, in one of two ``Format``s.
public struct LineLogHandler: LogHandler {
    /// How a line looks.
    public enum Format: Sendable {
        /// `2026-01-31T12:00:00Z info allocator: unit assigned request=… unit=A-1`.
        case terminal
        /// `<6>unit assigned request=… unit=A-1` (systemd's stderr-to-journal protocol: the
        /// syslog priority as the prefix; the label is the unit's, the time the journal's).
        case journal
    }

    /// The logger's label.
    public let label: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public let format: Format

    /// A handler for `label` at `logLevel`.
    public init(label: String, logLevel: Logger.Level, format: Format = .terminal) {
        self.label = label
        self.logLevel = logLevel
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        StandardStream.error.write(line(level: event.level, message: "\(event.message)", metadata: merged))
        // A failed log write is dropped: there is nowhere to report it.
    }

    /// The line (with its newline) for one event: the message first, then the metadata sorted by
    /// key; line breaks inside either written as `\n` and NUL as `\0`, so that an event is always
    /// one line (under journald too, which also splits at NUL).
    public func line(level: Logger.Level, message: String, metadata: Logger.Metadata, now: time_t = time(nil)) -> String {
        let pairs = metadata.keys.sorted().map { "\($0)=\(metadata[$0]!)" }.joined(separator: " ")
        let body = message + (pairs.isEmpty ? "" : " " + pairs)
        switch format {
        case .terminal: return "\(Self.timestamp(now)) \(level) \(label): \(body.replacingNewlines())\n"
        case .journal: return "<\(Self.syslogPriority(level))>\(body.replacingNewlines())\n"
        }
    }

    /// The syslog priority of a level: critical 2, error 3, warning 4, notice 5, info 6,
    /// debug and trace 7.
    public static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .critical: 2
        case .error: 3
        case .warning: 4
        case .notice: 5
        case .info: 6
        case .debug, .trace: 7
        }
    }

    /// `now` as `2026-01-31T12:00:00Z` (UTC).
    static func timestamp(_ now: time_t = time(nil)) -> String {
        var now = now
        var parts = tm()
        gmtime_r(&now, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}

extension String {
    /// The text on one line: line breaks become `\n`, NUL characters `\0` (journald ends a line at
    /// a NUL too, and would read what follows as a line of its own, with its own `<N>` prefix).
    fileprivate func replacingNewlines() -> String {
        var text = contains(where: \.isNewline) ? split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).joined(separator: "\\n") : self
        if text.utf8.contains(0) { text = text.split(separator: "\0", omittingEmptySubsequences: false).joined(separator: "\\0") }
        return text
    }
}
