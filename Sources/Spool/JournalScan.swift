/// What a segment's bytes hold: the whole, valid frames, the damaged byte ranges between them,
/// and a torn tail (see `docs/spool-format.md`, "Damage and recovery").
///
/// - A frame is *valid* when its length is 1 to ``JournalSegment/maxRecordBytes``, its payload
///   lies within the bytes, and the CRC-32 of the payload matches. Records are never empty, so
///   zeros (8 zero bytes would be an empty frame with a matching CRC) are never taken for one.
/// - The bytes after the last valid frame are a *torn tail* when they are a strict prefix of a
///   frame (fewer than 8 bytes, or a plausible length that runs past the end) and no valid frame
///   can be found in them: a writer died in the middle of an append, which was therefore never
///   acknowledged. So are bytes that are all zeros to the end: a power loss before an append's
///   `fsync` may keep the file's new size but not its data (ext4 `data=writeback`, the zero-filled
///   appends ALICE and LazyFS model), and zeros are never a frame.
/// - Anything else that is not a valid frame is *damage*: a complete frame whose checksum fails,
///   or bytes followed by valid frames. The scan resynchronises after it by looking, byte by
///   byte, for the next valid frame. A false resynchronisation needs a 32-bit CRC to match by
///   chance.
struct SegmentScan: Sendable {
    /// Each valid frame: its offset and its payload's byte range.
    var records: [(offset: Int, payload: Range<Int>)] = []
    /// Byte ranges that are neither valid frames nor a torn tail.
    var damaged: [Range<Int>] = []
    /// The incomplete last frame, if any.
    var tornTail: Range<Int>?
    /// The end of the last valid frame (or the scan's start).
    var validEnd: Int
}

extension JournalSegment {
    /// Whether a valid frame starts at `offset`; returns its end.
    static func validFrame(in bytes: [UInt8], at offset: Int) -> Int? {
        guard offset + frameHeaderSize <= bytes.count else { return nil }
        let length = Int(readUInt32(bytes, at: offset))
        guard length > 0, length <= maxRecordBytes else { return nil }
        let start = offset + frameHeaderSize
        guard start + length <= bytes.count,
              CRC32.checksum(bytes[start..<start + length]) == readUInt32(bytes, at: offset + 4) else { return nil }
        return start + length
    }

    /// Whether the bytes from `offset` to the end are a strict prefix of some frame.
    static func isStrictPrefixOfFrame(_ bytes: [UInt8], at offset: Int) -> Bool {
        let remaining = bytes.count - offset
        if remaining < frameHeaderSize { return true }
        let length = Int(readUInt32(bytes, at: offset))
        return length <= maxRecordBytes && frameHeaderSize + length > remaining
    }

    /// The next offset after `offset` where a valid frame starts.
    static func resynchronise(_ bytes: [UInt8], after offset: Int) -> Int? {
        var candidate = offset + 1
        while candidate + frameHeaderSize < bytes.count {
            if validFrame(in: bytes, at: candidate) != nil { return candidate }
            candidate += 1
        }
        return nil
    }

    /// Scans `bytes` from `offset` (see ``SegmentScan``).
    static func scan(_ bytes: [UInt8], from offset: Int) -> SegmentScan {
        var result = SegmentScan(validEnd: offset)
        var position = offset
        while position < bytes.count {
            if let end = validFrame(in: bytes, at: position) {
                result.records.append((position, position + frameHeaderSize..<end))
                position = end
                result.validEnd = end
                continue
            }
            guard let next = resynchronise(bytes, after: position) else {
                if isStrictPrefixOfFrame(bytes, at: position) || bytes[position...].allSatisfy({ $0 == 0 }) {
                    result.tornTail = position..<bytes.count
                } else {
                    result.damaged.append(position..<bytes.count)
                }
                return result
            }
            result.damaged.append(position..<next)
            position = next
        }
        return result
    }

    /// The ids of index events (`"entity":"…"`) whose text survives in `bytes`: the requests a
    /// damaged range may have held.
    static func entityNames(in bytes: ArraySlice<UInt8>) -> [String] {
        let marker = Array("\"entity\":\"".utf8)
        var names: [String] = []
        var index = bytes.startIndex
        while index + marker.count <= bytes.endIndex {
            if bytes[index..<index + marker.count].elementsEqual(marker) {
                let start = index + marker.count
                var end = start
                while end < bytes.endIndex, end - start <= 128, bytes[end] != UInt8(ascii: "\""), bytes[end] >= 0x20 { end += 1 }
                if end < bytes.endIndex, bytes[end] == UInt8(ascii: "\""), end > start {
                    names.append(String(decoding: bytes[start..<end], as: UTF8.self))
                }
                index = end
            } else {
                index += 1
            }
        }
        return names
    }
}
