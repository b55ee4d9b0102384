/// Group commit of acknowledgements: several processed items removed with one directory sync.
extension Queue {
    /// Removes several processed items for good with one `fsync` of `active/` (instead of one per
    /// item, as ``acknowledge(_:)`` does): for a consumer that finished a group of items together.
    /// Each item is removed, or resumed from an earlier failed sync of its removal, exactly as
    /// ``acknowledge(_:)`` would; then `active/` is synced once for all that were removed.
    ///
    /// Durability is as for ``acknowledge(_:)``: until the sync, a crash may bring an item back,
    /// which at-least-once delivery allows (the consumer is idempotent); the caller must have made
    /// the items' effects durable before calling this.
    ///
    /// - Returns: the items not acknowledged, each with its error (``SpoolError/leaseLost(id:)``;
    ///   an I/O error, after which the item is still held, and a later ``acknowledge(_:)`` of it
    ///   completes the removal). Empty when every item was acknowledged.
    public func acknowledge(_ items: [ClaimedItem]) -> [(item: ClaimedItem, error: SpoolError)] {
        var failures: [(item: ClaimedItem, error: SpoolError)] = []
        var removed: [ClaimedItem] = []
        for item in items {
            do {
                try active.remove(item.entry.name, operation: "acknowledge")
                removed.append(item)
            } catch .notFound {
                do {
                    if try !resumeTransition(item.entry.name) { failures.append((item, .leaseLost(id: item.id.rawValue))) }
                } catch {
                    failures.append((item, error))
                }
            } catch {
                failures.append((item, error))
            }
        }
        guard !removed.isEmpty else { return failures }
        do {
            try active.sync()
        } catch {
            // Each removal is remembered, so that retrying it syncs again (see finishTransition).
            unsynced.withLock { pending in for item in removed { pending[item.entry.name] = active } }
            failures += removed.map { ($0, error) }
        }
        return failures
    }
}
