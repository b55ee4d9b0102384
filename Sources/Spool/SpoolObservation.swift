#if canImport(Glibc)
import Glibc
#endif

/// Read-only looks at a spool for `spoolctl stats`: every function here only opens, lists,
/// `stat`s and reads; none creates a directory, takes a lock or writes a byte, so a restricted
/// caller can run them beside the daemons at any time. Costs: one listing per directory (the
/// 256 ready buckets of a queue among them); no item is opened.
extension Spool {
    /// What a queue holds, from its entry names.
    public struct QueueObservation: Sendable, Equatable {
        public var ready = 0
        public var deferred = 0
        public var active = 0
        public var dead = 0
        /// When the oldest item waiting in `ready/` (due or deferred) was first enqueued
        /// (milliseconds since the epoch), if any waits: the time in its id when the id is
        /// generated (a ULID, as every request id is), else the file's modification time (an item
        /// file is written once, at its enqueue, and only renamed afterwards).
        public var oldestWaitingEnqueuedAt: Int64?
    }

    /// The counts of queue `name`; all zero when the queue was never created (nothing is
    /// created here, unlike ``queue(_:retry:)``).
    public func observeQueue(_ name: QueueName, now: Int64 = Clock.nowMilliseconds()) throws(SpoolError) -> QueueObservation {
        var result = QueueObservation()
        let base: Directory
        do { base = try root.subdirectory("queues", create: false).subdirectory(name.rawValue, create: false) } catch .notFound {
            return result
        }
        if let ready = try? base.subdirectory("ready", create: false) {
            for index in 0..<Queue.bucketCount {
                guard let bucket = try? ready.subdirectory(ItemID.bucketName(index), create: false) else { continue }
                for entryName in try bucket.names() {
                    guard let entry = EntryName.ready(entryName) else { continue }
                    if entry.due <= now { result.ready += 1 } else { result.deferred += 1 }
                    let enqueued = Self.generatedMilliseconds(entry.id) ?? Self.modifiedMilliseconds(bucket, entryName)
                    if let enqueued, enqueued < (result.oldestWaitingEnqueuedAt ?? .max) { result.oldestWaitingEnqueuedAt = enqueued }
                }
            }
        }
        if let active = try? base.subdirectory("active", create: false) { result.active = try active.names().count }
        if let dead = try? base.subdirectory("dead", create: false) {
            result.dead = try dead.names().filter { EntryName.dead($0) != nil }.count
        }
        return result
    }

    /// The record `name` of the record directory `directory` (e.g. `state`, `breaker`), or nil
    /// when either is missing; unlike ``RecordDirectory``, creates nothing.
    public func observeRecord(_ directory: String, _ name: String, limit: Int = 1 << 20) throws(SpoolError) -> [UInt8]? {
        guard Names.isSafeComponent(directory), Names.isSafeComponent(name, allowDots: true) else { throw .invalidName(name) }
        do { return try root.subdirectory(directory, create: false).readFile(name, limit: limit) } catch .notFound { return nil }
    }

    /// Files in `corrupt/` (the quarantine).
    public func quarantinedFileCount() throws(SpoolError) -> Int { try quarantine.names().count }

    /// One journal segment file.
    public struct JournalSegmentFile: Sendable, Equatable {
        public var sequence: UInt64
        public var sealed: Bool
        /// Its size on disk (compressed for a sealed segment).
        public var bytes: Int64
    }

    /// The journal's segment files, ascending; empty when there is no `journal/` yet.
    public func journalSegmentFiles() throws(SpoolError) -> [JournalSegmentFile] {
        let directory: Directory
        do { directory = try root.subdirectory("journal", create: false) } catch .notFound { return [] }
        var files: [JournalSegmentFile] = []
        for name in try directory.names() {
            guard let parsed = JournalSegment.parseName(name), let info = try? directory.calls.statusAt(directory.descriptor, name),
                  (info.st_mode & S_IFMT) == S_IFREG else { continue }
            files.append(JournalSegmentFile(sequence: parsed.sequence, sealed: parsed.sealed, bytes: Int64(info.st_size)))
        }
        return files.sorted { ($0.sequence, $0.sealed ? 1 : 0) < ($1.sequence, $1.sealed ? 1 : 0) }
    }

    /// How far a reader at `position` (the status index's projection position) is behind the
    /// journal's end.
    public struct JournalLag: Sendable, Equatable {
        /// Segments holding bytes past `position`.
        public var segments = 0
        /// Bytes past `position`: the unread bytes of the live segment (its header excluded) and
        /// of a sealed segment `position` lies inside (uncompressed), plus every other sealed
        /// segment after `position` at its size on disk (compressed).
        public var bytes: Int64 = 0
    }

    /// ``JournalLag`` of `position` against the segment files now present. Inflates at most the
    /// one sealed segment `position` lies inside (a segment sealed after the reader last read it).
    public func journalLag(from position: JournalPosition) throws(SpoolError) -> JournalLag {
        var lag = JournalLag()
        let files = try journalSegmentFiles()
        var seen = Set<UInt64>()
        for file in files where file.sequence >= position.segment && !seen.contains(file.sequence) {
            seen.insert(file.sequence)
            let offset = file.sequence == position.segment ? position.offset : 0
            var remaining: Int64
            if !file.sealed {
                remaining = file.bytes - Int64(max(offset, try liveHeaderLength(file.sequence)))
            } else if offset == 0 {
                remaining = file.bytes
            } else {
                remaining = Int64(try sealedLength(file.sequence)) - Int64(position.offset)
            }
            if remaining > 0 {
                lag.segments += 1
                lag.bytes += remaining
            }
        }
        return lag
    }

    private func liveHeaderLength(_ sequence: UInt64) throws(SpoolError) -> Int {
        let directory = try root.subdirectory("journal", create: false)
        let bytes = (try? directory.readPrefix(JournalSegment.activeName(sequence), count: 64)) ?? []
        return JournalSegment.parseHeader(bytes)?.length ?? 0
    }

    private func sealedLength(_ sequence: UInt64) throws(SpoolError) -> Int {
        let directory = try root.subdirectory("journal", create: false)
        let compressed = try directory.readFile(JournalSegment.sealedName(sequence), limit: 1 << 30)
        return Zlib.inflatePrefix(compressed, limit: 1 << 30).output.count
    }

    /// The milliseconds in a generated id (a ULID: 10 characters of Crockford base 32 for the
    /// time, then 16 random ones); nil for a caller-chosen id of another form.
    static func generatedMilliseconds(_ id: ItemID) -> Int64? {
        let text = Array(id.rawValue.utf8)
        guard text.count == 26 else { return nil }
        var value: Int64 = 0
        for byte in text.prefix(10) {
            guard let digit = crockford.firstIndex(of: byte) else { return nil }
            value = value << 5 | Int64(digit)
        }
        for byte in text.dropFirst(10) where !crockford.contains(byte) { return nil }
        return value
    }

    private static let crockford = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

    private static func modifiedMilliseconds(_ directory: Directory, _ name: String) -> Int64? {
        guard let info = try? directory.calls.statusAt(directory.descriptor, name) else { return nil }
        return Int64(info.st_mtim.tv_sec) * 1000 + Int64(info.st_mtim.tv_nsec) / 1_000_000
    }
}

extension Directory {
    /// The first `count` bytes of regular file `name` (fewer if it is shorter).
    func readPrefix(_ name: String, count: Int) throws(SpoolError) -> [UInt8] {
        let fd: Int32
        do { fd = try calls.open(descriptor, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0) } catch {
            throw .system(operation: "open", path: child(name), error)
        }
        defer { try? calls.close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let result = bytes.withUnsafeMutableBytes { buffer in
                Result { () throws(SystemCallError) -> Int in try calls.read(fd, UnsafeMutableRawBufferPointer(rebasing: buffer[filled...])) }
            }
            guard case .success(let read) = result, read > 0 else { break }
            filled += read
        }
        return Array(bytes.prefix(filled))
    }
}
