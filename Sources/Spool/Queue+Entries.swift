/// Every entry a queue holds, in any state, for programs that must know what may still come
/// back to a consumer (the retention pruning of the allocator's and notifier's records).
extension Queue {
    /// One entry of a queue: a waiting, claimed or dead item, by its name.
    public struct Entry: Sendable, Hashable {
        /// Where the entry lies.
        public enum State: String, Sendable, Hashable {
            case ready, active, dead
        }

        /// Its state (directory).
        public let state: State
        /// The item's id, from the name.
        public let id: ItemID
        /// The entry's file name in its directory.
        public let name: String
        /// The bucket (`00`…`ff`) of a waiting entry.
        let bucket: String?
    }

    /// Every entry, from one listing of every bucket, then `active/`, then `dead/` (not the
    /// `.error` files beside dead items). Names only: nothing is read. An item that moves while
    /// the directories are listed may be missed (a retry from `active/` to a bucket listed
    /// before) or seen twice; a caller that must not miss one lists twice (see
    /// `RetentionPruning` in the allocator, docs/reliability.md).
    ///
    /// - Throws: ``SpoolError`` when a directory cannot be listed.
    public func entries() throws(SpoolError) -> [Entry] {
        var entries: [Entry] = []
        for index in 0..<Self.bucketCount {
            let bucketName = ItemID.bucketName(index)
            let names: [String]
            do { names = try bucket(bucketName, create: false).names() } catch .notFound { continue }
            for name in names {
                if let entry = EntryName.ready(name) { entries.append(Entry(state: .ready, id: entry.id, name: name, bucket: bucketName)) }
            }
        }
        for name in try active.names() {
            if let entry = EntryName.active(name) { entries.append(Entry(state: .active, id: entry.id, name: name, bucket: nil)) }
        }
        for name in try dead.names() {
            if let entry = EntryName.dead(name) { entries.append(Entry(state: .dead, id: entry.id, name: name, bucket: nil)) }
        }
        return entries
    }

    /// The whole file of `entry` (header and payload, not decoded), or nil when the entry has
    /// moved or gone since it was listed.
    ///
    /// - Throws: ``SpoolError/unsafePath(_:)`` for a symlink or other non-regular file,
    ///   ``SpoolError/tooLarge(size:limit:)`` for a file past the queue's item limit, other
    ///   ``SpoolError``s for I/O failures.
    public func contents(of entry: Entry) throws(SpoolError) -> [UInt8]? {
        let directory: Directory
        switch entry.state {
        case .ready:
            do { directory = try bucket(entry.bucket ?? entry.id.bucket, create: false) } catch .notFound { return nil }
        case .active: directory = active
        case .dead: directory = dead
        }
        do {
            return try directory.readFile(entry.name, limit: spool.configuration.maxItemBytes + 4096)
        } catch .notFound {
            return nil
        }
    }
}
