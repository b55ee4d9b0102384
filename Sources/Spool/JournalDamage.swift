/// Damage found in one journal segment: what could not be read, and where a copy of the
/// damaged segment was kept (in the spool's `corrupt/`) before anything else was done.
///
/// Records outside ``ranges`` were read (the reader resynchronises after damage); records inside
/// them are lost from the journal. ``entities`` names the index entities (request ids) whose
/// event text is still legible inside the damaged bytes: the ones most likely affected.
public struct JournalDamage: Sendable, Equatable, Codable, CustomStringConvertible {
    /// A byte range `[start, end)` of the segment's uncompressed bytes.
    public struct ByteRange: Sendable, Equatable, Codable, CustomStringConvertible {
        /// First damaged byte.
        public var start: Int
        /// Just past the last damaged byte.
        public var end: Int

        public var description: String { "\(start)..<\(end)" }
    }

    /// The segment's sequence number.
    public var sequence: UInt64
    /// The segment's file name in `journal/`.
    public var segment: String
    /// The damaged byte ranges of the segment's (uncompressed) bytes.
    public var ranges: [ByteRange]
    /// What is wrong, in words.
    public var reason: String
    /// The copy in the spool, e.g. `corrupt/journal.00000000000000000003.log.1a2b3c4d`; nil if
    /// the copy could not be made (the failure is logged).
    public var copy: String?
    /// Entity ids legible inside the damaged bytes.
    public var entities: [String]

    /// Bytes lost in all ranges.
    public var bytesLost: Int { ranges.reduce(0) { $0 + $1.end - $1.start } }

    public var description: String {
        var text = "journal segment \(segment): \(reason)"
        if !ranges.isEmpty { text += "; \(bytesLost) bytes unreadable at \(ranges.map(\.description).joined(separator: ", "))" }
        if let copy { text += "; copy in \(copy)" }
        if !entities.isEmpty { text += "; mentions \(entities.joined(separator: ", "))" }
        return text
    }

    enum CodingKeys: String, CodingKey {
        case sequence, segment, ranges, reason, copy, entities
    }
}

/// What a ``Journal/read(from:_:)`` came to.
public struct JournalReadResult: Sendable {
    /// The position after the last record delivered: resume reading here.
    public var end: JournalPosition
    /// Damage found in the segments read (empty for a healthy journal). A torn tail of the live
    /// segment is not damage: it is an append that never completed.
    public var damage: [JournalDamage]
}

extension Journal {
    /// Copies `bytes` (the contents of segment file `name`) durably to the spool's `corrupt/`
    /// under a name derived from their checksum, unless that copy already exists. Returns the
    /// copy's path relative to the spool.
    func keepCopy(of name: String, bytes: [UInt8]) throws(SpoolError) -> String {
        let checksum = String(CRC32.checksum(bytes[...]), radix: 16)
        let target = "journal.\(name).\(checksum)"
        if (try? calls.statusAt(spool.quarantine.descriptor, target)) == nil {
            try spool.quarantine.createDurably(target, contents: bytes, staging: spool.staging, mode: 0o640)
        }
        return "corrupt/\(target)"
    }

    /// The damage report of segment `name`, with a copy of `original` (the file's bytes as
    /// stored) kept first, and logged.
    func damageReport(sequence: UInt64, name: String, bytes: [UInt8], ranges: [Range<Int>],
                      reason: String, original: [UInt8], copyName: String? = nil) -> JournalDamage {
        var copy: String?
        do { copy = try keepCopy(of: copyName ?? name, bytes: original) } catch {
            spool.logger.error("cannot copy damaged journal segment to corrupt/", metadata: [
                "segment": "\(directory.child(name))", "error": "\(error)",
            ])
        }
        var entities: [String] = []
        for range in ranges {
            for name in JournalSegment.entityNames(in: bytes[range.clamped(to: 0..<bytes.count)]) where !entities.contains(name) {
                entities.append(name)
            }
        }
        let damage = JournalDamage(sequence: sequence, segment: name,
                                   ranges: ranges.map { JournalDamage.ByteRange(start: $0.lowerBound, end: $0.upperBound) },
                                   reason: reason, copy: copy, entities: entities)
        spool.logger.error("damaged journal segment", metadata: [
            "segment": "\(directory.child(name))", "damage": "\(damage)",
        ])
        return damage
    }
}
