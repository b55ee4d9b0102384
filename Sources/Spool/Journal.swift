#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// Where a record is in the journal: its segment and the byte offset of its frame in the
/// segment's uncompressed bytes. Positions order records; `.start` precedes them all.
public struct JournalPosition: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The segment's sequence number.
    public var segment: UInt64
    /// Byte offset within the segment's uncompressed bytes.
    public var offset: Int

    /// A position.
    public init(segment: UInt64, offset: Int) {
        self.segment = segment
        self.offset = offset
    }

    /// Before the first record.
    public static let start = JournalPosition(segment: 0, offset: 0)

    public static func < (lhs: JournalPosition, rhs: JournalPosition) -> Bool {
        (lhs.segment, lhs.offset) < (rhs.segment, rhs.offset)
    }

    public var description: String { "\(segment):\(offset)" }
}

/// The compressed, append-only event log in `journal/` of a spool.
///
/// Records are opaque byte strings, framed with their length and CRC-32. Appends from any number
/// of threads and processes are serialized by an `flock(2)` on `journal/lock`, so records never
/// interleave. Each append checks that its segment is still the current one, rotates when the
/// segment reached ``Configuration/maxSegmentBytes`` or ``Configuration/maxSegmentAge``
/// (sealing the old one: compressed with zlib into `<seq>.log.z`), and first validates whatever
/// was appended since this process last looked (only those bytes: the end of the last whole
/// frame is kept in the append state):
///
/// - whole, valid frames (another process's appends) are accepted;
/// - a torn tail (an incomplete last frame: its writer died mid-write, so it was never
///   acknowledged) is copied to the spool's `corrupt/` and then cut;
/// - damage (a complete frame whose checksum fails, or bytes followed by valid frames) is never
///   cut: the segment is copied to `corrupt/`, sealed as it is (every valid frame stays readable;
///   readers resynchronise past the damage and report it), and appends continue in a fresh
///   segment.
public final class Journal: Sendable {
    /// When an append returns.
    public enum Durability: Sendable {
        /// After `fsync`: the records survive a crash.
        case durable
        /// After `write`: visible to readers, durable at the next ``Journal/sync()`` or durable
        /// append (group commit: one `fsync` for many records).
        case buffered
    }

    /// Rotation thresholds.
    public struct Configuration: Sendable {
        /// A segment is sealed once it holds this many bytes.
        public var maxSegmentBytes = 4 << 20
        /// …or once it is this old (checked at the next append).
        public var maxSegmentAge: Duration = .seconds(3600)
        /// A configuration with the defaults.
        public init() {}
    }

    let directory: Directory
    let spool: Spool
    let configuration: Configuration
    private let lockDescriptor: Int32
    private let state = Mutex(AppendState())

    struct AppendState {
        var descriptor: Int32 = -1
        var sequence: UInt64 = 0
        var createdAt: Int64 = 0
        /// Where the last whole, validated frame of the segment ends.
        var validEnd = 0
        /// The segment as this process last knew it whole, every byte validated (by itself, or
        /// by the checkpoint it opened with): its size and change time. A durable append
        /// writes a checkpoint only when the segment is still that file, or the one the current
        /// checkpoint vouches for; otherwise bytes before `validEnd` may have been changed in
        /// place since anyone validated them, and the checkpoint must not vouch for them.
        var vouched: JournalCheckpoint?
    }

    /// Opens (creating if needed) the journal of `spool`.
    public init(spool: Spool, configuration: Configuration = Configuration()) throws(SpoolError) {
        self.spool = spool
        self.configuration = configuration
        directory = try spool.root.subdirectory("journal", create: true)
        do {
            lockDescriptor = try spool.configuration.calls.open(directory.descriptor, "lock", O_RDWR | O_CREAT | O_NOFOLLOW, 0o660)
        } catch let error where error.errno == ELOOP {
            throw .unsafePath("journal/lock")
        } catch {
            throw .system(operation: "open", path: "journal/lock", error)
        }
    }

    deinit {
        let calls = spool.configuration.calls
        state.withLock { if $0.descriptor >= 0 { try? calls.close($0.descriptor) } }
        try? calls.close(lockDescriptor)
    }

    var calls: FileSystemCalls { spool.configuration.calls }

    /// True when `journal/` was removed, renamed or replaced after this journal opened it: its
    /// appends would go to a directory nobody reads (or fail), and its lock would no longer
    /// exclude writers of the new `journal/`. A long-running process that sees it must open the
    /// journal afresh (the daemons exit and are restarted).
    public var isDetached: Bool { !directory.isStillAt(below: spool.root) }

    /// Appends `payloads` as consecutive records in one write and returns the position of the
    /// first. With `.durable` the records are `fsync`ed before this returns. On failure no part of
    /// the records stays in the journal (the segment is cut back), so the append can be retried.
    ///
    /// - Throws: ``SpoolError/tooLarge(size:limit:)`` for a record over 16 MiB,
    ///   ``SpoolError/corrupt(path:reason:)`` for an empty one;
    ///   ``SpoolError/system(operation:path:_:)`` for I/O failures (`ENOSPC`, `EIO`).
    @discardableResult
    public func append(_ payloads: [[UInt8]], durability: Durability) throws(SpoolError) -> JournalPosition {
        for payload in payloads where payload.count > JournalSegment.maxRecordBytes {
            throw .tooLarge(size: payload.count, limit: JournalSegment.maxRecordBytes)
        }
        // An empty frame would be 8 zero bytes: records are never empty, so zeros are never one.
        if payloads.contains(where: \.isEmpty) { throw .corrupt(path: "journal", reason: "a journal record must not be empty") }
        let bytes = payloads.flatMap(JournalSegment.frame)
        return try withExclusiveAccess { current throws(SpoolError) in
            try rotateIfDue(&current)
            let path = directory.child(JournalSegment.activeName(current.sequence))
            let unchanged: stat
            do throws(SystemCallError) { unchanged = try calls.status(current.descriptor) } catch { throw .system(operation: "stat", path: path, error) }
            let before = Int(unchanged.st_size)
            guard before == current.validEnd else {
                throw .corrupt(path: path, reason: "segment changed while the journal lock was held")
            }
            // Vouched for as it is now (by this process, or by the checkpoint another appender
            // left): only then may what this append leaves be vouched for.
            let vouched = current.vouched?.matches(unchanged) == true
                || JournalCheckpoint.read(from: lockDescriptor).map { $0.sequence == current.sequence && $0.matches(unchanged) } == true
            current.vouched = nil
            do throws(SpoolError) {
                try directory.writeAll(current.descriptor, bytes, path: path)
                // Taken before the fsync: a change after it (not by an appender) makes the
                // checkpoint stale, never vouch for bytes it did not see.
                let written = vouched ? try? calls.status(current.descriptor) : nil
                let checkpoint = written.flatMap { written in
                    Int(written.st_size) == before + bytes.count
                        ? JournalCheckpoint(sequence: current.sequence, validEnd: before + bytes.count, createdAt: current.createdAt,
                                            status: written) : nil
                }
                if durability == .durable {
                    do throws(SystemCallError) { try calls.fsync(current.descriptor) } catch { throw SpoolError.system(operation: "sync", path: path, error) }
                    checkpoint?.write(to: lockDescriptor)
                }
                current.vouched = checkpoint
            } catch {
                // Cut back whatever part of the records reached the file; if even that fails,
                // the next append validates those bytes (and cuts them if they are torn).
                _ = try? calls.truncate(current.descriptor, Int64(before))
                throw error
            }
            current.validEnd = before + bytes.count
            return JournalPosition(segment: current.sequence, offset: before)
        }
    }

    /// Makes every record appended so far by this process durable (`fsync` of the segment).
    public func sync() throws(SpoolError) {
        try state.withLock { current throws(SpoolError) in
            guard current.descriptor >= 0 else { return }
            do throws(SystemCallError) { try calls.fsync(current.descriptor) } catch {
                throw .system(operation: "sync", path: directory.child(JournalSegment.activeName(current.sequence)), error)
            }
        }
    }

    /// Seals the current segment now (if it holds any record) and starts a new one.
    public func rotate() throws(SpoolError) {
        try withExclusiveAccess { current throws(SpoolError) in
            if try segmentSize(current) > JournalSegment.header(createdAt: current.createdAt).count {
                try seal(&current)
            }
        }
    }

    /// Runs `body` holding both the in-process mutex and the cross-process `flock`, with the
    /// current segment open, repaired and verified to still be the live one.
    private func withExclusiveAccess<T>(_ body: (inout AppendState) throws(SpoolError) -> T) throws(SpoolError) -> T {
        try state.withLock { current throws(SpoolError) in
            do throws(SystemCallError) { try calls.lock(lockDescriptor, LOCK_EX) } catch { throw .system(operation: "lock", path: "journal/lock", error) }
            defer { try? calls.lock(lockDescriptor, LOCK_UN) }
            if current.descriptor >= 0 {
                let linked = (try? calls.status(current.descriptor).st_nlink).map { $0 > 0 } ?? false
                if !linked {
                    try? calls.close(current.descriptor)
                    current = AppendState()
                }
            }
            if current.descriptor < 0 { try openCurrentSegment(&current) }
            try validateTail(&current)
            return try body(&current)
        }
    }

    private func segmentSize(_ current: AppendState) throws(SpoolError) -> Int {
        do { return Int(try calls.status(current.descriptor).st_size) } catch {
            throw .system(operation: "stat", path: directory.child(JournalSegment.activeName(current.sequence)), error)
        }
    }

    private func rotateIfDue(_ current: inout AppendState) throws(SpoolError) {
        let size = try segmentSize(current)
        // The creation time comes from the segment's header: a damaged one may be any Int64.
        let (age, overflow) = Clock.nowMilliseconds().subtractingReportingOverflow(current.createdAt)
        let headerSize = JournalSegment.header(createdAt: current.createdAt).count
        guard size > headerSize, size >= configuration.maxSegmentBytes || overflow || age >= configuration.maxSegmentAge.milliseconds else { return }
        try seal(&current)
    }

    /// Finds the live segment (cleaning up after an interrupted seal), or starts the first one,
    /// and cuts a torn tail. Reads nothing of the segment when the append checkpoint in
    /// `journal/lock` vouches for it (see ``JournalCheckpoint``); otherwise lists `journal/` and
    /// reads and validates the whole live segment.
    private func openCurrentSegment(_ current: inout AppendState) throws(SpoolError) {
        if let checkpoint = JournalCheckpoint.read(from: lockDescriptor), openCheckpointed(checkpoint, into: &current) { return }
        var sealed = Set<UInt64>()
        var active = Set<UInt64>()
        for name in try directory.names() {
            guard let segment = JournalSegment.parseName(name) else { continue }
            if segment.sealed { sealed.insert(segment.sequence) } else { active.insert(segment.sequence) }
        }
        // A seal that crashed after writing `.log.z` leaves the `.log` behind: the `.z` is whole.
        for sequence in active.intersection(sealed) {
            try directory.remove(JournalSegment.activeName(sequence), operation: "remove sealed segment")
            try directory.sync()
            active.remove(sequence)
        }
        let newest = max(active.max() ?? 0, sealed.max() ?? 0)
        if newest == 0 || !active.contains(newest) {
            try startSegment(newest + 1, into: &current)
            return
        }
        let name = JournalSegment.activeName(newest)
        do {
            current.descriptor = try calls.open(directory.descriptor, name, O_RDWR | O_APPEND | O_NOFOLLOW, 0)
        } catch let error where error.errno == ELOOP {
            throw .unsafePath(directory.child(name))
        } catch {
            throw .system(operation: "open", path: directory.child(name), error)
        }
        current.sequence = newest
        // Taken before the read: a change after it gives the file another change time.
        let unread = try? calls.status(current.descriptor)
        let bytes = try directory.readFile(name, limit: Int.max / 2)
        guard let header = JournalSegment.parseHeader(bytes) else {
            // Nothing in it can be trusted to be appended to: keep it whole, and start afresh.
            _ = damageReport(sequence: newest, name: name, bytes: bytes, ranges: [0..<bytes.count],
                             reason: "live segment has no header; sealed as it is", original: bytes)
            try seal(&current)
            return
        }
        current.createdAt = header.createdAt
        // Whole and valid as read: nothing to validate again. Otherwise the first validation
        // deals with what follows the header (the whole segment is read once per open).
        let scan = JournalSegment.scan(bytes, from: header.length)
        current.validEnd = scan.damaged.isEmpty && scan.tornTail == nil ? bytes.count : header.length
        if let unread, Int(unread.st_size) == bytes.count, current.validEnd == bytes.count {
            current.vouched = JournalCheckpoint(sequence: newest, validEnd: bytes.count, createdAt: header.createdAt, status: unread)
        }
    }

    /// Opens the segment `checkpoint` names if it vouches for it (see ``JournalCheckpoint``):
    /// then the whole segment is known valid up to its size, and nothing is read.
    private func openCheckpointed(_ checkpoint: JournalCheckpoint, into current: inout AppendState) -> Bool {
        guard let descriptor = try? calls.open(directory.descriptor, JournalSegment.activeName(checkpoint.sequence),
                                               O_RDWR | O_APPEND | O_NOFOLLOW, 0) else { return false }
        do throws(SystemCallError) {
            guard checkpoint.matches(try calls.status(descriptor)) else { throw SystemCallError(call: .status, errno: ESTALE) }
            // A sealed copy means the segment is no longer the live one (an interrupted seal).
            _ = try calls.statusAt(directory.descriptor, JournalSegment.sealedName(checkpoint.sequence))
        } catch where error.errno == ENOENT {
            current = AppendState(descriptor: descriptor, sequence: checkpoint.sequence, createdAt: checkpoint.createdAt,
                                  validEnd: checkpoint.validEnd, vouched: checkpoint)
            return true
        } catch {}
        try? calls.close(descriptor)
        return false
    }

    /// Validates the bytes appended since ``AppendState/validEnd`` (see the type's description).
    /// Reads only those bytes; called under the lock before every append.
    private func validateTail(_ current: inout AppendState) throws(SpoolError) {
        let size = try segmentSize(current)
        guard size != current.validEnd else { return }
        let name = JournalSegment.activeName(current.sequence)
        let path = directory.child(name)
        if size < current.validEnd {
            // Shortened behind our back (not by a journal writer): validate it all again.
            let bytes = try directory.readFile(name, limit: Int.max / 2)
            current.validEnd = JournalSegment.parseHeader(bytes)?.length ?? 0
            spool.logger.error("live journal segment shrank; validating it again", metadata: ["segment": "\(path)"])
        }
        guard lseek(current.descriptor, off_t(current.validEnd), SEEK_SET) >= 0 else {
            throw .system(operation: "seek", path: path, SystemCallError(call: .read, errno: errno))
        }
        let fresh = try directory.readAll(current.descriptor, sizeHint: size - current.validEnd, limit: Int.max / 2, path: path)
        let scan = JournalSegment.scan(fresh, from: 0)
        if scan.damaged.isEmpty {
            if let torn = scan.tornTail {
                let offset = current.validEnd + torn.lowerBound
                // Kept first: a flipped bit in the last frame's length looks like a torn tail too.
                // If no copy can be made (a full disk), nothing is cut and the append fails.
                let copy = try keepCopy(of: "\(name).torn-at-\(offset)", bytes: Array(fresh[torn]))
                do {
                    try calls.truncate(current.descriptor, Int64(offset))
                    try calls.fsync(current.descriptor)
                } catch {
                    throw .system(operation: "cut torn tail of", path: path, error)
                }
                spool.logger.warning("cut torn journal tail (an append that never completed)", metadata: [
                    "segment": "\(path)", "offset": "\(offset)", "bytes": "\(torn.count)", "copy": "\(copy)",
                ])
            }
            current.validEnd += scan.validEnd
            return
        }
        let whole = try directory.readFile(name, limit: Int.max / 2)
        _ = damageReport(sequence: current.sequence, name: name, bytes: whole,
                         ranges: scan.damaged.map { ($0.lowerBound + current.validEnd)..<($0.upperBound + current.validEnd) },
                         reason: "damage inside the live segment; sealed as it is, appends continue in a new segment",
                         original: whole)
        try seal(&current)
    }

    private func startSegment(_ sequence: UInt64, into current: inout AppendState) throws(SpoolError) {
        let created = Clock.nowMilliseconds()
        let name = JournalSegment.activeName(sequence)
        // Group-writable: every program of the spool group appends to it.
        try directory.createDurably(name, contents: JournalSegment.header(createdAt: created), staging: spool.staging, mode: 0o660)
        let descriptor: Int32
        do {
            descriptor = try calls.open(directory.descriptor, name, O_RDWR | O_APPEND | O_NOFOLLOW, 0)
        } catch {
            throw .system(operation: "open", path: directory.child(name), error)
        }
        if current.descriptor >= 0 { try? calls.close(current.descriptor) }
        current = AppendState(descriptor: descriptor, sequence: sequence, createdAt: created,
                              validEnd: JournalSegment.header(createdAt: created).count)
        // The header is durable (created, synced and renamed into place above).
        if let status = try? calls.status(descriptor), Int(status.st_size) == current.validEnd {
            let checkpoint = JournalCheckpoint(sequence: sequence, validEnd: current.validEnd, createdAt: created, status: status)
            checkpoint.write(to: lockDescriptor)
            current.vouched = checkpoint
        }
    }

    /// Compresses the live segment into `<seq>.log.z` (durably), starts `<seq+1>.log`, then
    /// removes `<seq>.log`. A crash at any point leaves a journal `openCurrentSegment` repairs.
    private func seal(_ current: inout AppendState) throws(SpoolError) {
        let sequence = current.sequence
        let name = JournalSegment.activeName(sequence)
        let bytes = try directory.readFile(name, limit: Int.max / 2)
        let compressed: [UInt8]
        do { compressed = try Zlib.compress(bytes) } catch {
            throw .corrupt(path: directory.child(name), reason: "zlib deflate failed (\(error.code))")
        }
        try directory.createDurably(JournalSegment.sealedName(sequence), contents: compressed, staging: spool.staging)
        do {
            try startSegment(sequence + 1, into: &current)
            try directory.remove(name, operation: "remove sealed segment")
            try directory.sync()
        } catch {
            // `<seq>.log.z` is whole: never append to `<seq>.log` again. The next append
            // reopens through `openCurrentSegment`, which finishes this seal.
            if current.descriptor >= 0 { try? calls.close(current.descriptor) }
            current = AppendState()
            throw error
        }
    }
}
