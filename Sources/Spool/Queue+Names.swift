/// What a queue holds, judged by names only.
extension Queue {
    /// The ids of the items that wait (due or not) or are claimed, from their names alone:
    /// nothing is read or decoded. Lists every bucket and `active/`: meant to be called once for
    /// many items (a consumer looking for items that supersede parts of a large item in hand),
    /// never per item.
    public func queuedIDs() throws(SpoolError) -> Set<ItemID> {
        var ids = Set<ItemID>()
        for index in 0..<Self.bucketCount {
            guard let directory = try? bucket(ItemID.bucketName(index), create: false) else { continue }
            for name in try directory.names() {
                if let entry = EntryName.ready(name) { ids.insert(entry.id) }
            }
        }
        for name in try active.names() {
            if let entry = EntryName.active(name) { ids.insert(entry.id) }
        }
        return ids
    }

    /// Queue `name` of the same spool (opened, created if missing), with `retry`.
    public func sibling(_ name: QueueName, retry: RetryPolicy) throws(SpoolError) -> Queue {
        try spool.queue(name, retry: retry)
    }
}
