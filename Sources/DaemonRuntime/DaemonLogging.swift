#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// Logging for the programs: one line per event on stderr, with metadata (the request id among
/// it), at the level named by `SPOOL_LOG_LEVEL` (`trace` … `critical`; default `info`).
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
            LoggingSystem.bootstrap { name in LineLogHandler(label: name, logLevel: level) }
        }
        return Logger(label: label)
    }
}

/// A log handler that writes `TIMESTAMP LEVEL LABEL: key=value … MESSAGE` lines to stderr.
public struct LineLogHandler: LogHandler {
    /// The logger's label.
    public let label: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]

    /// A handler for `label` at `logLevel`.
    public init(label: String, logLevel: Logger.Level) {
        self.label = label
        self.logLevel = logLevel
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let pairs = merged.keys.sorted().map { "\($0)=\(merged[$0]!)" }.joined(separator: " ")
        let text = "\(event.message)".replacingNewlines()
        let line = "\(Self.timestamp()) \(event.level) \(label):\(pairs.isEmpty ? "" : " " + pairs.replacingNewlines()) \(text)\n"
        StandardStream.error.write(line)  // a failed log write is dropped: there is nowhere to report it
    }

    /// The current time as `2026-01-31T12:00:00Z` (UTC).
    static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}

extension String {
    /// The text on one line: line breaks become `\n`.
    fileprivate func replacingNewlines() -> String {
        contains(where: \.isNewline) ? split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).joined(separator: "\\n") : self
    }
}
