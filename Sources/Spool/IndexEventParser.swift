/// A fast reader of index events as ``IndexEvent/encoded()`` writes them, for the index's
/// rebuild and catch-up (half a rebuild's time went to `JSONDecoder`).
///
/// It reads a strict subset of JSON: one object with exactly the six keys of an event, each
/// once, in any order, with any JSON whitespace; strings with the escapes `\"`, `\\`, `\/`,
/// `\b`, `\f`, `\n`, `\r`, `\t` and valid UTF-8 (no `\u` escapes); integers without fraction,
/// exponent or leading zeros. Anything else (another key, a `\u` escape, a float, a duplicate,
/// trailing bytes, invalid UTF-8) makes it return nil, and ``IndexEvent/decode(_:)`` then asks
/// `JSONDecoder`, which stays the authority: the parser never accepts what `JSONDecoder`
/// rejects, and never reads a value differently (a property test compares the two).
struct IndexEventParser {
    private let bytes: [UInt8]
    private var position = 0

    /// The event in `bytes`, or nil if they are outside the subset.
    static func parse(_ bytes: [UInt8]) -> IndexEvent? {
        var parser = IndexEventParser(bytes: bytes)
        return parser.event()
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private mutating func event() -> IndexEvent? {
        var entity: String?, state: String?, document: String?
        var version: Int64?, at: Int64?
        var keys: [String: String]?
        guard consume(UInt8(ascii: "{")) else { return nil }
        var first = true
        while true {
            skipWhitespace()
            if consume(UInt8(ascii: "}")) { break }
            if !first { guard consume(UInt8(ascii: ",")) else { return nil } }
            first = false
            guard let key = string(), consume(UInt8(ascii: ":")) else { return nil }
            switch key {
            case "entity" where entity == nil: guard let value = string() else { return nil }; entity = value
            case "state" where state == nil: guard let value = string() else { return nil }; state = value
            case "document" where document == nil: guard let value = string() else { return nil }; document = value
            case "version" where version == nil: guard let value = integer() else { return nil }; version = value
            case "at" where at == nil: guard let value = integer() else { return nil }; at = value
            case "keys" where keys == nil: guard let value = stringMap() else { return nil }; keys = value
            default: return nil  // another key, or one again
            }
        }
        skipWhitespace()
        guard position == bytes.count, let entity, let state, let document, let version, let at, let keys else { return nil }
        return IndexEvent(entity: entity, version: version, state: state, at: at, keys: keys, document: document)
    }

    private mutating func stringMap() -> [String: String]? {
        var map: [String: String] = [:]
        guard consume(UInt8(ascii: "{")) else { return nil }
        var first = true
        while true {
            skipWhitespace()
            if consume(UInt8(ascii: "}")) { return map }
            if !first { guard consume(UInt8(ascii: ",")) else { return nil } }
            first = false
            guard let name = string(), consume(UInt8(ascii: ":")), let value = string(), map[name] == nil else { return nil }
            map[name] = value
        }
    }

    private mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    /// Skips whitespace, then consumes `byte` if it is next.
    private mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    private mutating func string() -> String? {
        guard consume(UInt8(ascii: "\"")) else { return nil }
        var unescaped: [UInt8] = []
        var start = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                defer { position += 1 }
                if unescaped.isEmpty { return String(validating: bytes[start..<position], as: UTF8.self) }
                unescaped.append(contentsOf: bytes[start..<position])
                return String(validating: unescaped, as: UTF8.self)
            }
            if byte < 0x20 { return nil }  // a raw control character: not JSON
            if byte == UInt8(ascii: "\\") {
                if unescaped.isEmpty { unescaped.reserveCapacity(bytes.count - start) }
                unescaped.append(contentsOf: bytes[start..<position])
                guard position + 1 < bytes.count else { return nil }
                switch bytes[position + 1] {
                case UInt8(ascii: "\""): unescaped.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): unescaped.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): unescaped.append(UInt8(ascii: "/"))
                case UInt8(ascii: "b"): unescaped.append(0x08)
                case UInt8(ascii: "f"): unescaped.append(0x0C)
                case UInt8(ascii: "n"): unescaped.append(0x0A)
                case UInt8(ascii: "r"): unescaped.append(0x0D)
                case UInt8(ascii: "t"): unescaped.append(0x09)
                default: return nil  // `\u` and anything else: left to JSONDecoder
                }
                position += 2
                start = position
                continue
            }
            position += 1
        }
        return nil
    }

    private mutating func integer() -> Int64? {
        skipWhitespace()
        let negative = position < bytes.count && bytes[position] == UInt8(ascii: "-")
        if negative { position += 1 }
        let digitsStart = position
        var value: Int64 = 0
        while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
            let digit = Int64(bytes[position] - UInt8(ascii: "0"))
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { return nil }
            value = next
            position += 1
        }
        let count = position - digitsStart
        guard count > 0, count == 1 || bytes[digitsStart] != UInt8(ascii: "0") else { return nil }
        // A fraction or an exponent: JSONDecoder's business.
        if position < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[position]) { return nil }
        return value
    }
}
