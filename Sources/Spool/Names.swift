/// Validation of the names the spool puts on disk. Every name that reaches a system call is
/// checked here first: no `/`, no leading `.`, only `[A-Za-z0-9_-]` (plus `.` where a format
/// uses it as a separator), bounded length. That rules out `..`, hidden files and path tricks.
enum Names {
    static func isSafeComponent(_ name: String, allowDots: Bool = false, maxLength: Int = 200) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= maxLength, bytes[0] != UInt8(ascii: ".") else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                return true
            case UInt8(ascii: "."):
                return allowDots
            default:
                return false
            }
        }
    }
}

/// The name of a queue in the spool, e.g. `inbound`. Lowercase letters, digits and `-`,
/// 1 to 64 characters. Declaring a queue is one line: `static let x = QueueName("x")`; its
/// directories are created on first use.
public struct QueueName: Hashable, Sendable, CustomStringConvertible {
    /// The name as it appears on disk under `queues/`.
    public let rawValue: String

    /// Creates a queue name; traps on a name outside the grammar (queue names are constants in
    /// code). Use ``init(validating:)`` for names that come from input.
    public init(_ rawValue: String) {
        guard let name = QueueName(validating: rawValue) else { preconditionFailure("invalid queue name \(rawValue)") }
        self = name
    }

    /// Creates a queue name, or `nil` if `rawValue` is outside the grammar.
    public init?(validating rawValue: String) {
        guard rawValue.utf8.count <= 64, Names.isSafeComponent(rawValue),
              rawValue.utf8.allSatisfy({ !(UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) && $0 != UInt8(ascii: "_") })
        else { return nil }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}
