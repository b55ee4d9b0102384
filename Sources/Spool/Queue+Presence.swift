/// Whether a queue still holds an item, judged by names only.
extension Queue {
    /// True when an entry named for `id` waits in its bucket, is claimed in `active/` or lies in
    /// `dead/`, whether or not its file decodes (a damaged one is still there until its consumer
    /// quarantines it). Lists the bucket, then `active/`, then `dead/`: an item moving from a
    /// bucket to `active/` (a claim) or from `active/` to `dead/` is found; one that a consumer
    /// acknowledges in between is not (its consumer recorded its effect before acknowledging).
    public func holds(id: ItemID) throws(SpoolError) -> Bool {
        let prefix = "\(id.rawValue)."
        if let waiting = try? bucket(id.bucket, create: false), try waiting.names().contains(where: { $0.hasPrefix(prefix) }) {
            return true
        }
        if try active.names().contains(where: { $0.hasPrefix(prefix) }) { return true }
        return try dead.names().contains { $0.hasPrefix(prefix) && !$0.hasSuffix(".error") }
    }
}
