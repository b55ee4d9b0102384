import Foundation
import GRDB

/// A SQLite database in the spool that is damaged and cannot be rebuilt (a source of truth, not
/// a projection like the status index): the program that found it has copied it (and its
/// `-wal`) to the spool's `corrupt/`, left the original in place for the operator, and must
/// stop. Restarting does not help: the daemons exit with ``exitCode`` for it and their systemd
/// units name that code in `RestartPreventExitStatus=`.
public struct DatabaseDamage: Error, CustomStringConvertible, Sendable {
    /// `EX_DATAERR`: the data is bad; a restart finds it as bad.
    public static let exitCode: Int32 = 65

    /// The damaged file.
    public var path: String
    /// What SQLite or the check said.
    public var reason: String
    /// The copies kept, relative to the spool (`corrupt/…`); empty when copying failed.
    public var copies: [String]
    /// Why the copy failed, if it did.
    public var copyError: String?
    /// What the operator should do (one sentence).
    public var remedy: String

    public var description: String {
        let copy = copies.isEmpty ? "no copy could be kept in corrupt/ (\(copyError ?? "unknown error"))"
            : "a copy is in \(copies.joined(separator: " and "))"
        return "\(path) is damaged (\(reason)); \(copy); the file is left in place; \(remedy); restarting will not help"
    }

    /// True when `error` says a database is damaged: SQLite's `SQLITE_CORRUPT` or
    /// `SQLITE_NOTADB`, or a row that does not decode (GRDB's `RowDecodingError`: a value of the
    /// wrong type in a table whose schema the program wrote, e.g. `grdb_migrations`). Never for
    /// a transient or environmental failure (`SQLITE_BUSY`, `SQLITE_FULL`, I/O, permissions).
    public static func isDamage(_ error: any Error) -> Bool {
        if error is RowDecodingError { return true }
        return SpoolDatabase.isDamage(error)
    }

    /// True when `error` is damage the program found in the stored *values* (a row that does
    /// not decode, or ``StoredContentDamage``), as opposed to damage SQLite reported. Such
    /// damage is certain: SQLite read the values, so it is no failed read in disguise, and an
    /// integrity check (which sees pages, not meanings) would not confirm it.
    public static func isContentDamage(_ error: any Error) -> Bool {
        error is RowDecodingError || error is StoredContentDamage
    }

    /// Runs `PRAGMA integrity_check` on `database` (as ``quickCheck(_:)``, and also every index
    /// against its table); throws a `DatabaseError` (`SQLITE_CORRUPT`) with the first problems
    /// it reports unless it says `ok`.
    public static func integrityCheck(_ database: any DatabaseReader) throws {
        let problems = try database.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check(5)") }
        guard problems != ["ok"] else { return }
        try throwIfReadFailed(problems, check: "integrity_check")
        throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "integrity_check: " + problems.joined(separator: "; "))
    }

    /// A check that could not read a page says so (`Page 3: unable to get the page. error
    /// code=8458`): an I/O error (`SQLITE_IOERR_*`, e.g. `EIO` from `pread`) is thrown as that
    /// I/O error, since it says nothing about the file's contents.
    private static func throwIfReadFailed(_ problems: [String], check: String) throws {
        for problem in problems {
            guard let range = problem.range(of: "error code=") else { continue }
            let digits = problem[range.upperBound...].prefix { $0.isNumber }
            if let code = Int32(digits), code & 0xFF == ResultCode.SQLITE_IOERR.rawValue {
                throw DatabaseError(resultCode: ResultCode(rawValue: code),
                                    message: "\(check) could not read the file: " + problems.joined(separator: "; "))
            }
        }
    }

    /// Runs `PRAGMA quick_check` on `database`; throws a `DatabaseError` (`SQLITE_CORRUPT`) with
    /// the first problems it reports unless it says `ok`. Reads every page: O(size of the file).
    public static func quickCheck(_ database: any DatabaseReader) throws {
        let problems = try database.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check(5)") }
        guard problems != ["ok"] else { return }
        try throwIfReadFailed(problems, check: "quick_check")
        throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "quick_check: " + problems.joined(separator: "; "))
    }
}

/// A value or schema in a SQLite database of the spool that SQLite read without complaint but
/// that no program of ours wrote (a day outside every calendar, an empty period, a schema that
/// differs from the one the migrations create): damage, found by the program's own checks.
public struct StoredContentDamage: Error, CustomStringConvertible, Sendable {
    /// What is wrong, naming the value or table.
    public var message: String

    /// Damage described by `message`.
    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

extension Spool {
    /// Copies the damaged database at `path` (and its `-wal`, when not empty) to `corrupt/`,
    /// each under `<name>.<crc32 of its bytes>` (an existing copy with that name is kept, so
    /// repeated starts do not pile up copies), leaves the original in place, and returns the
    /// ``DatabaseDamage`` to throw. Never throws: a copy that fails is named in the result.
    public func keepDamagedDatabase(path: String, name: String, cause: any Error, remedy: String) -> DatabaseDamage {
        var damage = DatabaseDamage(path: path, reason: Self.reason(cause), copies: [], copyError: nil, remedy: remedy)
        for (source, target) in [(path, name), (path + "-wal", name + "-wal")] {
            guard let data = FileManager.default.contents(atPath: source) else {
                if source == path { damage.copyError = "cannot read \(path)" }
                continue
            }
            if source != path && data.isEmpty { continue }
            let bytes = [UInt8](data)
            let copy = "\(target).\(String(CRC32.checksum(bytes), radix: 16))"
            do {
                if (try? configuration.calls.statusAt(quarantine.descriptor, copy)) == nil {
                    try quarantine.createDurably(copy, contents: bytes, staging: staging, mode: 0o640)
                }
                damage.copies.append("corrupt/\(copy)")
            } catch {
                damage.copyError = "\(error)"
            }
        }
        return damage
    }

    private static func reason(_ error: any Error) -> String {
        let text = (error as? DatabaseError)?.message.map { "\($0)" } ?? (error as? StoredContentDamage)?.message ?? "\(error)"
        return text.split(separator: "\n").joined(separator: " ").prefix(300).description
    }
}
