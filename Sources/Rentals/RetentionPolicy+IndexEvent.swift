import Spool

extension RetentionPolicy {
    /// Whether compaction may drop the entity whose latest journal event is `event`: its
    /// document is a ``RentalStatus`` that ``mayDrop(_:now:)`` allows. An event whose document
    /// is not a rental status (another entity, a damaged document) is never dropped.
    public func mayDrop(latest event: IndexEvent, now: Timestamp) -> Bool {
        guard days != nil, let status = RentalStatus(document: event.document) else { return false }
        return mayDrop(status, now: now)
    }
}
