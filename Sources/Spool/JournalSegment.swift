/// The byte layout of a journal segment (format version 1, see `docs/spool-format.md`).
///
/// A segment is a header line `spool-journal 1 <created-ms>\n` followed by frames:
/// a little-endian `UInt32` payload length, a little-endian `UInt32` CRC-32 of the payload, and
/// the payload. The active segment `<seq>.log` holds these bytes as they are; a sealed segment
/// `<seq>.log.z` holds one zlib stream whose inflated bytes are exactly the same.
enum JournalSegment {
    static let magic = "spool-journal 1"
    static let frameHeaderSize = 8
    /// Largest record payload accepted.
    static let maxRecordBytes = 16 << 20

    static func header(createdAt: Int64) -> [UInt8] { Array("\(magic) \(createdAt)\n".utf8) }

    /// Parses the header; returns its length and the creation time, or nil if it is not one.
    static func parseHeader(_ bytes: [UInt8]) -> (length: Int, createdAt: Int64)? {
        guard let newline = bytes.prefix(64).firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = String(decoding: bytes[..<newline], as: UTF8.self)
        guard line.hasPrefix(magic + " "), let created = Int64(line.dropFirst(magic.count + 1)) else { return nil }
        return (newline + 1, created)
    }

    static func frame(_ payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(frameHeaderSize + payload.count)
        append(UInt32(payload.count), to: &bytes)
        append(CRC32.checksum(payload), to: &bytes)
        bytes.append(contentsOf: payload)
        return bytes
    }

    private static func append(_ value: UInt32, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    static func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << UInt32($1 * 8) }
    }

    static func activeName(_ sequence: UInt64) -> String { "\(digits(sequence)).log" }
    static func sealedName(_ sequence: UInt64) -> String { "\(digits(sequence)).log.z" }

    private static func digits(_ sequence: UInt64) -> String {
        let text = String(sequence)
        return String(repeating: "0", count: max(0, 20 - text.count)) + text
    }

    /// The segment files in a journal directory: sequence number and whether it is sealed.
    static func parseName(_ name: String) -> (sequence: UInt64, sealed: Bool)? {
        let sealed = name.hasSuffix(".log.z")
        guard sealed || name.hasSuffix(".log") else { return nil }
        let stem = name.prefix(20)
        guard stem.count == 20, stem.allSatisfy(\.isNumber), let sequence = UInt64(stem),
              name.count == (sealed ? 26 : 24) else { return nil }
        return (sequence, sealed)
    }
}
