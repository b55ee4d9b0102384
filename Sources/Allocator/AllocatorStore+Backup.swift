import GRDB
import Spool

extension AllocatorStore {
    /// Writes a consistent copy of the store to a new SQLite file at `path` (which must not
    /// exist) with SQLite's online backup API: every page is copied in one step inside one read
    /// transaction, so the copy is the store as of one moment (a WAL snapshot), whatever the
    /// allocator commits meanwhile; the allocator is never blocked (WAL readers do not block the
    /// writer). The copy is a rollback-journal database without `-wal`/`-shm` files, checked
    /// whole with `PRAGMA integrity_check` and `fsync`ed before this returns.
    ///
    /// - Throws: ``DatabaseDamage`` when the copy fails the integrity check (the store itself is
    ///   damaged: nothing is copied to `corrupt/` here, the allocator reports it); GRDB's errors
    ///   for I/O failures. The caller removes a partial copy.
    public func backup(to path: String) throws {
        var configuration = Configuration()
        configuration.journalMode = .default
        let copy = try DatabaseQueue(path: path, configuration: configuration)
        try database.backup(to: copy)
        // The pages copied carry the source's WAL flag in the header: switch the copy back to
        // a rollback journal so that it is one self-contained file.
        try copy.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = DELETE") }
        try DatabaseDamage.integrityCheck(copy)
        try copy.close()
    }
}
