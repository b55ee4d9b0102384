#if canImport(Glibc)
import Glibc
#endif

/// What a compaction did (or, in a dry run, would do).
public struct JournalCompactionReport: Sendable, Equatable, Encodable {
    /// Sealed segments read and rewritten (the live segment is never touched).
    public var segmentsCompacted = 0
    /// Segments written (compacted segments; a retention pass rewrites some of them again).
    public var segmentsWritten = 0
    /// Superseded segments removed.
    public var segmentsRemoved = 0
    /// Records in the compacted segments before and after.
    public var recordsBefore = 0
    public var recordsAfter = 0
    /// Entities dropped by retention (their latest events, archived first if asked).
    public var entitiesDropped = 0
    /// Bytes of the journal directory's segment files before and after.
    public var journalBytesBefore = 0
    public var journalBytesAfter = 0
    /// The archive written, relative to the spool root (nil: nothing dropped, or no archive).
    public var archive: String?
    /// Segments at or below this one were left as they are: damage was met there.
    public var keptFromDamagedSegment: UInt64?
    /// True when nothing needed rewriting.
    public var unchanged = false

    public init() {}

    enum CodingKeys: String, CodingKey {
        case segmentsCompacted = "segments_compacted", segmentsWritten = "segments_written", segmentsRemoved = "segments_removed"
        case recordsBefore = "records_before", recordsAfter = "records_after", entitiesDropped = "entities_dropped"
        case journalBytesBefore = "journal_bytes_before", journalBytesAfter = "journal_bytes_after", archive
        case keptFromDamagedSegment = "kept_from_damaged_segment", unchanged
    }
}

extension Journal {
    /// The events of entities retention dropped: what an archive receives.
    public typealias ArchiveWriter = ([IndexEvent]) throws -> String

    /// Compacts the sealed segments in the manner of Kafka's compacted topics, then applies
    /// retention; see `docs/spool-format.md`, "Compaction", for the steps and why a crash at any
    /// point loses nothing and leaves nothing half-visible.
    ///
    /// 1. Reads the whole journal (the live segment too: its events supersede older ones and keep
    ///    their entities from being dropped) and plans (``CompactionPlan``).
    /// 2. Writes each compacted segment (staged in `tmp/`, `fsync`ed) and renames it over the
    ///    sealed segment of the same number, from the highest number down, `fsync`ing
    ///    `journal/` after each rename; then removes the sealed segments no output replaced and
    ///    `fsync`s `journal/`. Nothing is dropped yet: until this step completes, the journal
    ///    holds every event it held (some twice), so any reader, at any moment, sees the same
    ///    latest event of every entity.
    /// 3. If entities are to be dropped: `archive` receives their latest events (it must make
    ///    them durable before it returns), then each compacted segment holding one of them is
    ///    rewritten without them, one atomic rename each (an entity lies in one segment only,
    ///    after step 2).
    ///
    /// Holds `journal/compact.lock` (exclusive, not waiting) throughout; never takes the
    /// appenders' lock. With `dryRun`, plans and reports only.
    ///
    /// - Throws: ``CompactionBusy`` when another compaction holds the lock; ``SpoolError`` for
    ///   I/O failures (whatever was renamed into place stays correct: rerun to finish).
    /// - Returns: the report and the damage the reader met (segments at or below damage are left
    ///   as they are).
    public func compact(pieceBytes: Int = 4 << 20, dryRun: Bool = false, now: Int64 = Clock.nowMilliseconds(),
                        mayDrop: (IndexEvent) -> Bool, archive: ArchiveWriter?) throws -> (JournalCompactionReport, [JournalDamage]) {
        let lock = try takeCompactionLock()
        defer { try? calls.close(lock) }
        return try compactHoldingLock(pieceBytes: pieceBytes, dryRun: dryRun, now: now, mayDrop: mayDrop, archive: archive)
    }

    private func compactHoldingLock(pieceBytes: Int, dryRun: Bool, now: Int64, mayDrop: (IndexEvent) -> Bool,
                                    archive: ArchiveWriter?) throws -> (JournalCompactionReport, [JournalDamage]) {
        var report = JournalCompactionReport()
        report.journalBytesBefore = segmentBytesOnDisk()
        let (plan, damage) = try CompactionPlan.make(journal: self, sealed: try compactableSegments(),
                                                     pieceBytes: pieceBytes, mayDrop: mayDrop)
        report.keptFromDamagedSegment = plan.damagedThrough
        report.segmentsCompacted = plan.range.count
        report.recordsBefore = plan.recordsRead
        report.recordsAfter = plan.recordsKept - plan.dropped.count
        report.entitiesDropped = plan.dropped.count
        report.unchanged = plan.range.isEmpty || (plan.unchanged && plan.dropped.isEmpty)
        let outputs = Set(plan.pieces.map(\.sequence))
        report.segmentsRemoved = plan.range.filter { !outputs.contains($0) }.count
        if dryRun || report.unchanged {
            report.journalBytesAfter = report.journalBytesBefore
            return (report, damage)
        }
        // Step 2: every surviving record in place, nothing dropped yet.
        if !plan.unchanged {
            for piece in plan.pieces.reversed() {
                try replaceSealed(piece.sequence, with: CompactionPlan.segmentBytes(piece.records, createdAt: now))
                report.segmentsWritten += 1
            }
            for sequence in plan.range where !outputs.contains(sequence) {
                try removeSealed(sequence)
            }
            try directory.sync()
        }
        // Step 3: retention, after the archive is durable.
        if !plan.dropped.isEmpty {
            if let archive { report.archive = try archive(plan.dropped) }
            let droppedEntities = plan.droppedEntities
            for piece in plan.pieces where piece.records.contains(where: { record in
                guard let entity = record.entity else { return false }
                return droppedEntities.contains(entity)
            }) {
                try replaceSealed(piece.sequence, with: CompactionPlan.segmentBytes(piece.records, createdAt: now,
                                                                                   excluding: droppedEntities))
                report.segmentsWritten += 1
            }
            markRetention(now: now)
        }
        report.journalBytesAfter = segmentBytesOnDisk()
        spool.logger.info("journal compacted", metadata: [
            "segments": "\(report.segmentsCompacted)", "records_before": "\(report.recordsBefore)",
            "records_after": "\(report.recordsAfter)", "dropped": "\(report.entitiesDropped)",
        ])
        return (report, damage)
    }

    /// Sealed segments compaction may rewrite: every `.log.z` below the highest segment number
    /// whose `.log` is gone (a `.log` beside it is an interrupted seal, finished by the next
    /// appender). The highest sealed segment may be rewritten too: compaction keeps its number.
    func compactableSegments() throws(SpoolError) -> [UInt64] {
        var sealed = Set<UInt64>()
        var active = Set<UInt64>()
        for name in try directory.names() {
            guard let segment = JournalSegment.parseName(name) else { continue }
            if segment.sealed { sealed.insert(segment.sequence) } else { active.insert(segment.sequence) }
        }
        return sealed.subtracting(active).sorted()
    }

    /// Writes `bytes` compressed to `<sequence>.log.z` atomically and durably: staged in `tmp/`
    /// and `fsync`ed, renamed over the old segment, `journal/` `fsync`ed.
    private func replaceSealed(_ sequence: UInt64, with bytes: [UInt8]) throws(SpoolError) {
        let compressed: [UInt8]
        do { compressed = try Zlib.compress(bytes) } catch {
            throw .corrupt(path: directory.child(JournalSegment.sealedName(sequence)), reason: "zlib deflate failed (\(error.code))")
        }
        try directory.createDurably(JournalSegment.sealedName(sequence), contents: compressed, staging: spool.staging,
                                    mode: 0o640, replacing: true)
    }

    /// Removes the sealed segment `sequence` (gone already is fine).
    private func removeSealed(_ sequence: UInt64) throws(SpoolError) {
        do { try directory.remove(JournalSegment.sealedName(sequence), operation: "remove compacted segment") } catch {
            if case .notFound = error { return }
            throw error
        }
    }

    /// Bytes of the segment files in `journal/`.
    func segmentBytesOnDisk() -> Int {
        ((try? directory.names()) ?? []).reduce(0) { total, name in
            guard JournalSegment.parseName(name) != nil,
                  let status = try? calls.statusAt(directory.descriptor, name) else { return total }
            return total + Int(status.st_size)
        }
    }

    /// What the last retention pass left in `journal/compact.lock` (its time and a random
    /// number; empty before the first): an index rebuild compares it before it reads the
    /// journal and before it renames its file into place, and builds again if it changed (the
    /// build may hold an older event of an entity dropped meanwhile). Not synced: after a crash
    /// no build is in flight.
    func retentionStamp() -> [UInt8] {
        (try? directory.readFile("compact.lock", limit: 4096)) ?? []
    }

    private func markRetention(now: Int64) {
        let text = Array("retention \(now) \(UInt64.random(in: 0...UInt64.max))\n".utf8)
        guard let fd = try? calls.open(directory.descriptor, "compact.lock", O_WRONLY | O_NOFOLLOW, 0) else { return }
        defer { try? calls.close(fd) }
        _ = try? calls.truncate(fd, 0)
        try? directory.writeAll(fd, text, path: directory.child("compact.lock"))
    }

    /// Opens and locks `journal/compact.lock` exclusively (closing the descriptor releases it);
    /// throws ``CompactionBusy`` at once if another process holds it.
    private func takeCompactionLock() throws -> Int32 {
        let name = "compact.lock"
        let fd: Int32
        do { fd = try calls.open(directory.descriptor, name, O_RDWR | O_CREAT | O_NOFOLLOW, 0o660) } catch {
            throw SpoolError.system(operation: "open", path: directory.child(name), error)
        }
        do { try calls.lock(fd, LOCK_EX | LOCK_NB) } catch {
            try? calls.close(fd)
            if error.errno == EWOULDBLOCK { throw CompactionBusy() }
            throw SpoolError.system(operation: "lock", path: directory.child(name), error)
        }
        return fd
    }
}

/// Another compaction of the same journal is running (it holds `journal/compact.lock`).
public struct CompactionBusy: Error, Sendable, CustomStringConvertible {
    public var description: String { "another compaction of this journal is running (journal/compact.lock is held)" }
}
