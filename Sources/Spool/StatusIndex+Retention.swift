extension StatusIndex {
    /// The rows that retention dropped from `journal` but that the index still holds: rows
    /// whose entity has no event left in the journal and whose row `mayDrop` allows (read as the
    /// event it was projected from). Non-empty after a crash between a compaction's journal step
    /// and its index rebuild, or after a rebuild that raced a compaction; `spoolctl compact`
    /// rebuilds the index then. A row of an entity not (yet) in the journal that `mayDrop` does
    /// not allow (a request submitted after the journal was read) is not counted.
    public func rowsDroppedFromJournal(_ journal: Journal, mayDrop: (IndexEvent) -> Bool) throws -> [String] {
        var present = Set<ExactText>()
        _ = try journal.read(from: .start) { record in
            if let event = IndexEvent.decode(record.payload) { present.insert(ExactText(event.entity)) }
        }
        return try dump().filter { row in
            !present.contains(ExactText(row.entity))
                && mayDrop(IndexEvent(entity: row.entity, version: row.version, state: row.state, at: row.updatedAt,
                                      keys: row.keys, document: row.document))
        }.map(\.entity)
    }
}
