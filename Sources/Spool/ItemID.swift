#if canImport(Glibc)
import Glibc
#endif

/// The id of a queued item: unique across processes, roughly time-ordered when sorted as
/// text, and safe as a file name.
///
/// Generated ids are 26 characters of lowercase Crockford base 32: 10 for the milliseconds
/// since the Unix epoch, 16 for 80 random bits (the ULID layout). Ids chosen by a caller (for
/// example a request id that must follow an item through several queues) may use
/// `[A-Za-z0-9_-]`, 1 to 64 characters.
public struct ItemID: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    /// The id as text.
    public let rawValue: String

    /// Validates a caller-chosen id; `nil` if it is outside the grammar.
    public init?(_ rawValue: String) {
        guard rawValue.utf8.count <= 64, Names.isSafeComponent(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    /// A new id for `now` (milliseconds since the epoch) with 80 fresh random bits.
    public static func generate(nowMilliseconds: Int64 = Clock.nowMilliseconds()) -> ItemID {
        var generator = SystemRandomNumberGenerator()
        var text = [UInt8]()
        text.reserveCapacity(26)
        let time = UInt64(max(0, nowMilliseconds))
        for shift in stride(from: 45, through: 0, by: -5) {
            text.append(alphabet[Int((time >> UInt64(shift)) & 31)])
        }
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        for index in 0..<16 {
            let bits = index < 8 ? (high >> UInt64(index * 5)) & 31 : (low >> UInt64((index - 8) * 5)) & 31
            text.append(alphabet[Int(bits)])
        }
        return ItemID(unchecked: String(decoding: text, as: UTF8.self))
    }

    init(unchecked rawValue: String) { self.rawValue = rawValue }

    /// The hashed subdirectory (`00` to `ff`) the item lives in while it waits: the low byte of
    /// the 32-bit FNV-1a hash of the id's UTF-8 bytes, as two lowercase hex digits.
    public var bucket: String {
        var hash: UInt32 = 0x811c_9dc5
        for byte in rawValue.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        return Self.bucketName(Int(hash & 0xff))
    }

    static func bucketName(_ index: Int) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: [digits[index >> 4], digits[index & 15]], as: UTF8.self)
    }

    public static func < (lhs: ItemID, rhs: ItemID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = ItemID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "invalid item id"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)
}

/// Wall-clock time in milliseconds, the unit of every timestamp the spool writes.
public enum Clock {
    /// Milliseconds since the Unix epoch (`CLOCK_REALTIME`).
    public static func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}
