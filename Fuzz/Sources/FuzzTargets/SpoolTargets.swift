// Fuzz targets for the spool's own formats: item files, journal frames, whole journal segments
// (live and sealed), zlib, index events.
import Foundation
@testable import Spool

extension FuzzTarget {
    /// `ItemFile.decode`: a decoded item's payload is the file's tail and its checksum holds;
    /// encode ∘ decode is the identity; an item made of the input survives encode then decode.
    static let itemFile = FuzzTarget(name: "item-file", summary: "queue item files (spool-item 1)") { input in
        var violations = Violations()
        if let item = try? ItemFile.decode(input) {
            violations.expect(Array(input.suffix(item.payload.count)) == item.payload, "decoded payload is not the file's tail")
            violations.expect(CRC32.checksum(item.payload) == CRC32.checksum(Array(input.suffix(item.payload.count))), "payload checksum")
            violations.expect((try? ItemFile.decode(item.encoded())) == item, "decode(encode(item)) != item for \(item.id)")
        }
        let made = ItemFile(id: ItemID("fuzz-\(input.count)")!, enqueuedAt: Int64(input.count) - 7, payload: input)
        violations.expect((try? ItemFile.decode(made.encoded())) == made, "an item with this payload does not survive encode/decode")
        return violations.found
    }

    /// `JournalSegment.scan` over raw bytes: frames, damage and torn tail partition the bytes in
    /// order; every record returned is a whole frame whose CRC-32 holds; framing payloads and
    /// scanning them gives back exactly those payloads.
    static let journalFrames = FuzzTarget(name: "journal-frames", summary: "journal frames (length, CRC-32, payload)") { input in
        var violations = Violations()
        _ = JournalSegment.parseHeader(input)
        _ = JournalSegment.entityNames(in: input[...])
        let scan = JournalSegment.scan(input, from: 0)
        checkScan(scan, of: input, from: 0, &violations)
        // Round trip: payloads (the input cut at 0xff bytes, empty pieces dropped) framed.
        let payloads = input.split(separator: 0xFF).map(Array.init)
        let framed = payloads.flatMap(JournalSegment.frame)
        let again = JournalSegment.scan(framed, from: 0)
        violations.expect(again.records.map { Array(framed[$0.payload]) } == payloads, "framed payloads do not scan back")
        violations.expect(again.damaged.isEmpty && again.tornTail == nil, "framed payloads scan with damage")
        return violations.found
    }

    /// zlib: compress then inflate is the identity; a stream that inflates without failure
    /// re-compresses to the same bytes; output never exceeds the limit.
    static let zlib = FuzzTarget(name: "zlib", summary: "zlib streams of sealed segments") { input in
        var violations = Violations()
        let limit = 1 << 20
        let inflated = Zlib.inflatePrefix(input, limit: limit)
        violations.expect(inflated.output.count <= limit, "inflated past the limit")
        if inflated.failure == nil {
            let again = (try? Zlib.compress(inflated.output)).flatMap { try? Zlib.decompress($0, limit: limit) }
            violations.expect(again == inflated.output, "inflated bytes do not survive compress/decompress")
            violations.expect((try? Zlib.decompress(input, limit: limit)) == inflated.output, "decompress and inflatePrefix disagree")
        } else {
            violations.expect((try? Zlib.decompress(input, limit: limit)) == nil, "decompress accepts what inflatePrefix rejects")
        }
        let compressed = try? Zlib.compress(input)
        violations.expect(compressed.flatMap { try? Zlib.decompress($0, limit: max(input.count, 1)) } == input, "compress/decompress is not the identity")
        return violations.found
    }

    /// `IndexEvent.decode`: decode ∘ encode is the identity; entity ids are 1 to 128 bytes.
    static let indexEvent = FuzzTarget(name: "index-event", summary: "index events (JSON journal records)") { input in
        var violations = Violations()
        if let event = IndexEvent.decode(input) {
            violations.expect((1...128).contains(event.entity.utf8.count), "entity of \(event.entity.utf8.count) bytes accepted")
            violations.expect(IndexEvent.decode(event.encoded()) == event, "decode(encode(event)) != event: \(fuzzQuoted(event))")
            _ = IndexedEntity(event)
        }
        return violations.found
    }
}

/// The properties of a segment scan (see ``FuzzTarget/journalFrames``).
func checkScan(_ scan: SegmentScan, of bytes: [UInt8], from start: Int, _ violations: inout Violations) {
    var pieces: [(range: Range<Int>, kind: String)] = scan.records.map { ($0.offset..<$0.payload.upperBound, "record") }
    pieces += scan.damaged.map { ($0, "damage") }
    if let torn = scan.tornTail { pieces.append((torn, "torn tail")) }
    pieces.sort { $0.range.lowerBound < $1.range.lowerBound }
    var position = start
    for piece in pieces {
        violations.expect(piece.range.lowerBound == position && !piece.range.isEmpty,
                          "\(piece.kind) at \(piece.range) does not follow \(position) (pieces must partition the bytes)")
        position = piece.range.upperBound
    }
    violations.expect(position == max(start, bytes.count) || (pieces.isEmpty && start >= bytes.count), "scan ends at \(position) of \(bytes.count)")
    for record in scan.records {
        guard record.payload.upperBound <= bytes.count, record.offset + JournalSegment.frameHeaderSize == record.payload.lowerBound else {
            violations.expect(false, "record \(record) out of bounds")
            continue
        }
        let payload = Array(bytes[record.payload])
        violations.expect(!payload.isEmpty && payload.count <= JournalSegment.maxRecordBytes, "record of \(payload.count) bytes returned")
        violations.expect(Int(JournalSegment.readUInt32(bytes, at: record.offset)) == payload.count, "record length field mismatch at \(record.offset)")
        violations.expect(JournalSegment.readUInt32(bytes, at: record.offset + 4) == CRC32.checksum(payload), "record with a bad CRC returned at \(record.offset)")
    }
    violations.expect(scan.validEnd == (scan.records.last?.payload.upperBound ?? start), "validEnd \(scan.validEnd) is not the end of the last record")
    if let torn = scan.tornTail { violations.expect(torn.upperBound == bytes.count, "torn tail not at the end") }
}
