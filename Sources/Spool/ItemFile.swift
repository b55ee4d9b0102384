import CZlib

/// The contents of one queued item file (format version 1, see `docs/spool-format.md`):
///
///     spool-item 1\n
///     id <id>\n
///     enqueued-at <milliseconds since the epoch>\n
///     length <payload bytes>\n
///     crc32 <8 lowercase hex digits, CRC-32 of the payload>\n
///     \n
///     <payload>
///
/// Unknown header lines are ignored (a later minor version may add some); a file whose length or
/// checksum does not match, or whose first line is not `spool-item 1`, is corrupt.
struct ItemFile: Equatable {
    var id: ItemID
    var enqueuedAt: Int64
    var payload: [UInt8]

    static let magic = "spool-item 1"

    func encoded() -> [UInt8] {
        let header = """
        \(Self.magic)
        id \(id.rawValue)
        enqueued-at \(enqueuedAt)
        length \(payload.count)
        crc32 \(hex8(CRC32.checksum(payload)))


        """
        return Array(header.utf8) + payload
    }

    /// Decodes `bytes`; throws a reason (for the quarantine log line) if they are not a whole,
    /// valid version-1 item.
    static func decode(_ bytes: [UInt8]) throws(ItemDecodingError) -> ItemFile {
        var fields: [String: String] = [:]
        var position = 0
        var lineNumber = 0
        while true {
            guard let newline = bytes[position...].firstIndex(of: UInt8(ascii: "\n")), newline - position <= 512 else {
                throw ItemDecodingError("header is truncated or has an overlong line")
            }
            let line = String(decoding: bytes[position..<newline], as: UTF8.self)
            position = newline + 1
            if lineNumber == 0 {
                guard line == magic else { throw ItemDecodingError("not a version-1 item (first line \(line.prefix(40).debugDescription))") }
            } else if line.isEmpty {
                break
            } else {
                guard let space = line.firstIndex(of: " ") else { throw ItemDecodingError("malformed header line \(lineNumber + 1)") }
                fields[String(line[..<space])] = String(line[line.index(after: space)...])
            }
            lineNumber += 1
            guard lineNumber < 64 else { throw ItemDecodingError("too many header lines") }
        }
        guard let idText = fields["id"], let id = ItemID(idText) else { throw ItemDecodingError("missing or invalid id") }
        guard let enqueued = fields["enqueued-at"].flatMap({ Int64($0) }) else { throw ItemDecodingError("missing enqueued-at") }
        guard let length = fields["length"].flatMap({ Int($0) }), length >= 0 else { throw ItemDecodingError("missing length") }
        guard let crcText = fields["crc32"], let crc = UInt32(crcText, radix: 16), crcText.count == 8 else {
            throw ItemDecodingError("missing crc32")
        }
        guard bytes.count - position == length else {
            throw ItemDecodingError("payload is \(bytes.count - position) bytes, header says \(length)")
        }
        let payload = Array(bytes[position...])
        guard CRC32.checksum(payload) == crc else { throw ItemDecodingError("payload checksum mismatch") }
        return ItemFile(id: id, enqueuedAt: enqueued, payload: payload)
    }
}

/// Why an item or journal file could not be decoded.
struct ItemDecodingError: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

/// CRC-32 (ISO-HDLC, the zlib/PNG/gzip polynomial), computed by the system zlib.
public enum CRC32 {
    public static func checksum(_ bytes: some Collection<UInt8>) -> UInt32 {
        let value = bytes.withContiguousStorageIfAvailable { buffer in
            crc32(0, buffer.baseAddress, uInt(buffer.count))
        } ?? Array(bytes).withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        return UInt32(truncatingIfNeeded: value)
    }
}

func hex8(_ value: UInt32) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: 8 - text.count) + text
}
