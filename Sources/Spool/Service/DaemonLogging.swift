import Logging

/// Logging for the programs: one line per event on stderr, with metadata (the request id among
/// it), at the level named by `SPOOL_LOG_LEVEL` (`trace` … `critical`; default `info`).
public enum DaemonLogging {
    /// Installs the stderr handler once per process; returns a logger labelled `label`.
    public static func bootstrap(_ label: String, environment: [String: String]) -> Logger {
        let level = environment["SPOOL_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
        LoggingSystem.bootstrap { name in
            var handler = StreamLogHandler.standardError(label: name)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }
}
