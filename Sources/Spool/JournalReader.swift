import Logging

/// One record read back from the journal.
public struct JournalRecord: Sendable {
    /// Where the record starts.
    public let position: JournalPosition
    /// Where the record after it starts: resume reading here.
    public let next: JournalPosition
    /// The bytes appended.
    public let payload: [UInt8]
}

extension Journal {
    /// Streams every record at or after `position`, in append order across segments, to `body`,
    /// and reports the damage met on the way.
    ///
    /// Sealed segments are inflated; the live one is read up to its last whole record (a record
    /// being appended right now, a torn tail, is simply not seen yet). Damage never stops the
    /// reader: inside a segment it resynchronises on the next valid frame; a damaged zlib stream
    /// is inflated as far as it goes. Each damaged segment is copied to the spool's `corrupt/`
    /// (once per distinct content) and described in the result's ``JournalReadResult/damage``,
    /// so callers can say what was lost. Never modifies the journal itself.
    ///
    /// - Throws: I/O errors, or whatever `body` throws (reading stops there).
    @discardableResult
    public func read(from position: JournalPosition = .start,
                     _ body: (JournalRecord) throws -> Void) throws -> JournalReadResult {
        var resume = position
        var damage: [JournalDamage] = []
        for sequence in try segmentSequences() where sequence >= position.segment {
            // Caught up on the live segment: nothing to read (the common case of a tailing reader).
            if sequence == position.segment, let size = liveSize(sequence), size <= position.offset { continue }
            guard let segment = try segmentContents(sequence) else { continue }
            let bytes = segment.bytes
            let headerLength = JournalSegment.parseHeader(bytes)?.length
            var start = sequence == position.segment ? max(position.offset, headerLength ?? 0) : (headerLength ?? 0)
            // A position inside a segment that compaction rewrote since (its first record is the
            // compaction marker) means nothing there: read it again whole (the index's version
            // rule makes a repeated event harmless; a skipped one would be lost).
            if segment.sealed, let headerLength, start > headerLength,
               CompactionMarker.isCompacted(bytes, headerLength: headerLength) { start = headerLength }
            let parsed = JournalSegment.scan(bytes, from: start)
            var ranges = parsed.damaged
            var reasons: [String] = []
            if headerLength == nil, start == 0 { reasons.append("no segment header") }
            if !parsed.damaged.isEmpty { reasons.append("\(parsed.damaged.count) damaged region(s) skipped") }
            if let failure = segment.inflateFailure {
                reasons.append("zlib stream damaged or truncated (zlib \(failure.code)): nothing after inflated byte \(bytes.count) is readable")
                // A sealed segment is whole: an incomplete last frame is lost data, not a torn append.
                if let torn = parsed.tornTail { ranges.append(torn) }
            } else if segment.sealed, let torn = parsed.tornTail {
                reasons.append("incomplete last frame in a sealed segment")
                ranges.append(torn)
            }
            if !reasons.isEmpty {
                damage.append(damageReport(sequence: sequence, name: segment.name, bytes: bytes, ranges: ranges,
                                           reason: reasons.joined(separator: "; "), original: segment.original,
                                           copyName: segment.copyName))
            }
            for frame in parsed.records {
                let next = JournalPosition(segment: sequence, offset: frame.payload.upperBound)
                try body(JournalRecord(position: JournalPosition(segment: sequence, offset: frame.offset),
                                       next: next, payload: Array(bytes[frame.payload])))
                resume = next
            }
            // Resume past what was read, and past damage that ends the segment; a sealed segment
            // never changes again, so resume after it (a tailing reader reports its damage once).
            let past = segment.sealed ? JournalPosition(segment: sequence + 1, offset: 0)
                : JournalPosition(segment: sequence, offset: max(parsed.validEnd, parsed.tornTail == nil ? (parsed.damaged.last?.upperBound ?? 0) : 0))
            if resume < past { resume = past }
        }
        return JournalReadResult(end: resume, damage: damage)
    }

    /// All records from `position` on, collected (convenient for tests and small journals).
    public func records(from position: JournalPosition = .start) throws -> [JournalRecord] {
        var records: [JournalRecord] = []
        try read(from: position) { records.append($0) }
        return records
    }

    /// The size of the live (unsealed) segment `sequence`, or nil if it is sealed or gone.
    private func liveSize(_ sequence: UInt64) -> Int? {
        (try? directory.calls.statusAt(directory.descriptor, JournalSegment.activeName(sequence))).map { Int($0.st_size) }
    }

    /// The sequence numbers of the segments present, ascending.
    func segmentSequences() throws(SpoolError) -> [UInt64] {
        Set(try directory.names().compactMap { JournalSegment.parseName($0)?.sequence }).sorted()
    }

    /// A segment as read: its file name, the file's bytes, the uncompressed bytes (as far as
    /// they could be inflated) and the inflate failure, if any.
    struct SegmentContents {
        var name: String
        var sealed: Bool
        /// The name for the copy in `corrupt/`: a sealed segment whose zlib stream is intact is
        /// kept inflated, under its live name, so it matches the copy an appender made of it.
        var copyName: String
        var original: [UInt8]
        var bytes: [UInt8]
        var inflateFailure: Zlib.Failure?
    }

    /// Segment `sequence`: from `.log.z` if sealed, else from `.log` (retrying as sealed if it
    /// was sealed while we looked). Nil if it vanished.
    func segmentContents(_ sequence: UInt64) throws(SpoolError) -> SegmentContents? {
        for _ in 0..<2 {
            do {
                let name = JournalSegment.sealedName(sequence)
                let compressed = try directory.readFile(name, limit: 1 << 30)
                let inflated = Zlib.inflatePrefix(compressed, limit: 1 << 30)
                let intact = inflated.failure == nil
                return SegmentContents(name: name, sealed: true, copyName: intact ? JournalSegment.activeName(sequence) : name,
                                       original: intact ? inflated.output : compressed, bytes: inflated.output,
                                       inflateFailure: inflated.failure)
            } catch .notFound {}
            do {
                let name = JournalSegment.activeName(sequence)
                let bytes = try directory.readFile(name, limit: 1 << 30)
                return SegmentContents(name: name, sealed: false, copyName: name, original: bytes, bytes: bytes)
            } catch .notFound {}
        }
        return nil
    }
}
