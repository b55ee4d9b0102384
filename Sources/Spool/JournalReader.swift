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
    /// Streams every record at or after `position`, in append order across segments, to `body`.
    ///
    /// Sealed segments are inflated; the live one is read up to its last whole record (a record
    /// being appended right now is simply not seen yet). A damaged sealed segment is reported in
    /// the log and skipped rather than stopping the reader. Returns the position after the last
    /// record delivered, from which a later call resumes. Never modifies the journal.
    ///
    /// - Throws: I/O errors, or whatever `body` throws (reading stops there).
    @discardableResult
    public func read(from position: JournalPosition = .start,
                     _ body: (JournalRecord) throws -> Void) throws -> JournalPosition {
        var resume = position
        for sequence in try segmentSequences() where sequence >= position.segment {
            // Caught up on the live segment: nothing to read (the common case of a tailing reader).
            if sequence == position.segment, let size = liveSize(sequence), size <= position.offset { continue }
            guard let bytes = try segmentBytes(sequence) else { continue }
            guard let header = JournalSegment.parseHeader(bytes) else {
                spool.logger.error("journal segment has no header; skipped", metadata: ["segment": "\(sequence)"])
                continue
            }
            let start = sequence == position.segment ? max(position.offset, header.length) : header.length
            let parsed = JournalSegment.frames(in: bytes, from: start)
            for frame in parsed.records {
                let next = JournalPosition(segment: sequence, offset: frame.payload.upperBound)
                try body(JournalRecord(position: JournalPosition(segment: sequence, offset: frame.offset),
                                       next: next, payload: Array(bytes[frame.payload])))
                resume = next
            }
            if resume < JournalPosition(segment: sequence, offset: parsed.validEnd) {
                resume = JournalPosition(segment: sequence, offset: parsed.validEnd)
            }
        }
        return resume
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

    /// The uncompressed bytes of segment `sequence`: from `.log.z` if sealed, else from `.log`
    /// (retrying as sealed if it was sealed while we looked). Nil if it vanished or is damaged.
    func segmentBytes(_ sequence: UInt64) throws(SpoolError) -> [UInt8]? {
        for _ in 0..<2 {
            do {
                let compressed = try directory.readFile(JournalSegment.sealedName(sequence), limit: 1 << 30)
                do {
                    return try Zlib.decompress(compressed, limit: 1 << 30)
                } catch {
                    spool.logger.error("damaged sealed journal segment; skipped", metadata: [
                        "segment": "\(JournalSegment.sealedName(sequence))", "zlib": "\(error.code)",
                    ])
                    return nil
                }
            } catch .notFound {}
            do {
                return try directory.readFile(JournalSegment.activeName(sequence), limit: 1 << 30)
            } catch .notFound {}
        }
        return nil
    }
}
