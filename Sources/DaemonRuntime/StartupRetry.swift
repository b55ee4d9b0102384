#if canImport(Glibc)
import Glibc
#endif
import GRDB
import Logging
import Spool

/// Start-up with retries, for the daemons: opening the spool, the journal and the databases can
/// meet a condition that clears by itself (another process switching a database to WAL or
/// migrating it, a full disk being cleaned, a descriptor limit), and a daemon that exits on it
/// only restarts into the same race.
///
/// Transient: SQLite's `SQLITE_BUSY`, `SQLITE_LOCKED` and `SQLITE_FULL`; `EAGAIN`, `EBUSY`,
/// `EINTR`, `ENOSPC`, `EDQUOT`, `EMFILE`, `ENFILE` and `ENOMEM` from the file system. Anything
/// else (permissions, an unsafe path, a missing spool, a corrupt file) is permanent and thrown at
/// once, for the daemon to exit with a clear line.
public enum StartupRetry {
    /// Runs `body` until it succeeds, retrying transient failures after 0.1 s, 0.2 s, … (at most
    /// 5 s apart; about 20 s in all over `attempts` tries), logging each retry. Throws the last
    /// error when the attempts are used up, at once for a permanent error, and when `stop` is
    /// triggered while waiting.
    public static func run<T>(_ what: String, logger: Logger, stop: StopSignal, attempts: Int = 10,
                              _ body: () throws -> T) throws -> T {
        var delay = Duration.milliseconds(100)
        var attempt = 1
        while true {
            do { return try body() } catch where attempt < attempts && isTransient(error) && !stop.isTriggered {
                logger.warning("\(what) failed; retrying", metadata: [
                    "attempt": "\(attempt)", "retry_in": "\(delay)", "error": "\(error)",
                ])
                _ = stop.wait(timeout: delay)
                delay = min(delay * 2, .seconds(5))
                attempt += 1
            }
        }
    }

    /// True for the conditions listed in the type's description.
    public static func isTransient(_ error: any Error) -> Bool {
        if let error = error as? DatabaseError {
            return [.SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_FULL].contains(error.resultCode)
        }
        if let error = error as? SpoolError, case .system(_, _, let call) = error {
            return [EAGAIN, EBUSY, EINTR, ENOSPC, EDQUOT, EMFILE, ENFILE, ENOMEM].contains(call.errno)
        }
        return false
    }
}
