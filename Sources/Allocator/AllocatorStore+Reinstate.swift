import GRDB

extension AllocatorStore {
    /// Work run inside an inventory change's transaction, after the change (the waiting list's
    /// promotion, ``WaitlistPromotion``): it commits with the change or not at all, and the
    /// store itself knows nothing of what it does. A throw rolls the change back.
    public typealias InventoryHook = (Database) throws -> Void

    /// Puts unit `id` back in service (after ``retireUnit(_:)``), then runs `afterChange` in
    /// the same transaction. Returns the unit; one already in service is returned unchanged
    /// (and `afterChange` runs all the same: harmless, it promotes only what fits).
    ///
    /// - Throws: ``InventoryError/unknownUnit(_:)``.
    @discardableResult
    public func reinstateUnit(_ id: String, afterChange: InventoryHook? = nil) throws -> StorageUnit {
        try write { db in
            guard var unit = try StorageUnit.fetchOne(db, sql: "SELECT id, size, site, in_service FROM unit WHERE id = ?", arguments: [id]) else {
                throw InventoryError.unknownUnit(id)
            }
            if !unit.inService {
                try db.execute(sql: "UPDATE unit SET in_service = 1 WHERE id = ?", arguments: [id])
                unit.inService = true
            }
            try afterChange?(db)
            return unit
        }
    }
}
