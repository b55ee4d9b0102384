import Foundation
import Rentals
import Spool

/// Why a request to the front door failed, with the sysexits code `spoolctl` exits with. Each
/// message is one line, specific, and meant for the person at the terminal.
public struct IntakeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The sysexits code.
    public enum Code: Int32, Sendable {
        case usage = 64, badData = 65, noInput = 66, cannotCreate = 73, ioError = 74, tryAgain = 75, notPermitted = 77
        /// EX_CONFIG: a configuration file that cannot be used (`spoolctl config check`, as the daemons).
        case configuration = 78
    }

    /// The exit code.
    public let code: Code
    /// The one-line message.
    public let message: String
    /// For ``Code/tryAgain`` from the breaker: seconds after which a retry may succeed.
    public let retryAfterSeconds: Int?

    /// An error.
    public init(_ code: Code, _ message: String, retryAfterSeconds: Int? = nil) {
        self.code = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { message }

    /// Maps a spool failure to the front door's codes: a full disk or a busy resource is
    /// "try again later", a refused permission is "not permitted", the rest is an I/O error.
    public init(_ error: SpoolError, doing what: String) {
        switch error {
        case _ where error.isNoSpace: self.init(.tryAgain, "\(what): the spool's file system is full: \(error)", retryAfterSeconds: 60)
        case _ where error.isPermissionDenied: self.init(.notPermitted, "\(what): permission denied: \(error)")
        case .notFound(let thing): self.init(.noInput, "\(what): \(thing) not found")
        case .unsupportedFormat: self.init(.badData, "\(what): \(error)")
        default: self.init(.ioError, "\(what): \(error)")
        }
    }
}

extension IntakeError {
    /// Maps any failure while doing `what`: an ``IntakeError`` as it is, a ``SpoolError`` as
    /// ``init(_:doing:)`` does, and SQLite's "database or disk is full" (`SQLITE_FULL`, as GRDB
    /// reports it) as 75 like any full disk. SQLite reports some writes that fail for want of
    /// space as plain I/O errors (`SQLITE_IOERR`, e.g. growing the `-shm` file): those are 75 too
    /// when the file system of `spoolRoot` has no free blocks or inodes left. A damaged database
    /// (``DatabaseDamage``, already copied to `corrupt/`) is 65. Anything else is 74.
    public static func mapping(_ error: any Error, doing what: String, spoolRoot: String? = nil) -> IntakeError {
        if let error = error as? IntakeError { return error }
        if let damage = error as? DatabaseDamage { return IntakeError(.badData, "\(what): \(damage)") }
        if let error = error as? SpoolError { return IntakeError(error, doing: what) }
        let bridged = error as NSError
        if bridged.domain == "GRDB.DatabaseError" {
            let primary = bridged.code & 0xFF
            if primary == 13 || (primary == 10 && spoolRoot.map(isFull) == true) {
                return IntakeError(.tryAgain, "\(what): the spool's file system is full: \(error)", retryAfterSeconds: 60)
            }
        }
        return IntakeError(.ioError, "\(what): \(error)")
    }

    /// True when the file system holding `path` has no block or no inode left for an
    /// unprivileged writer.
    static func isFull(_ path: String) -> Bool {
        var status = statvfs()
        guard statvfs(path, &status) == 0 else { return false }
        return status.f_bavail == 0 || (status.f_files > 0 && status.f_favail == 0)
    }
}
