/// Listing and removing many records at once (the retention pruning of old records).
extension RecordDirectory {
    /// The names of the records, in no order: every entry but the `.lock` files of
    /// ``withLock(_:_:)``.
    ///
    /// - Throws: ``SpoolError`` when the directory cannot be listed.
    public func names() throws(SpoolError) -> [String] {
        try directory.names().filter { !$0.hasSuffix(".lock") && Names.isSafeComponent($0, allowDots: true) }
    }

    /// Removes the records `names` (no error for one already gone), then syncs the directory
    /// once: when it returns, the removals are durable. A crash before leaves any subset removed.
    ///
    /// - Throws: ``SpoolError``; the records removed before the failure stay removed.
    public func remove(_ names: [String]) throws(SpoolError) {
        guard !names.isEmpty else { return }
        for name in names {
            guard Names.isSafeComponent(name, allowDots: true) else { throw .invalidName(name) }
            do { try directory.remove(name, operation: "remove") } catch .notFound { continue }
        }
        try directory.sync()
    }
}
