/// Listing and removing many records at once (the retention pruning of old records).
extension RecordDirectory {
    /// Opens `path` below the spool root as ``init(spool:path:)`` does, but only when it exists:
    /// nil, creating nothing, when a component is missing (for a program that only removes
    /// records, and must not create directories with its own owner).
    ///
    /// - Throws: ``SpoolError`` for an invalid path or a component that cannot be opened.
    public static func existing(spool: Spool, path: String) throws(SpoolError) -> RecordDirectory? {
        var current = spool.root
        for component in path.split(separator: "/") {
            guard Names.isSafeComponent(String(component)) else { throw .invalidName(path) }
            do { current = try current.subdirectory(String(component), create: false) } catch .notFound { return nil }
        }
        return try RecordDirectory(spool: spool, path: path)
    }

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
