/// A string as a dictionary key compared by its UTF-8 bytes, as SQLite compares `TEXT` (Swift's
/// `String` equality is canonical equivalence: "café" with U+00E9 equals "cafe" + U+0301), for
/// code that gathers in memory what the status index keeps apart as distinct rows.
struct ExactText: Hashable, Sendable {
    let text: String

    init(_ text: String) { self.text = text }

    static func == (lhs: ExactText, rhs: ExactText) -> Bool { lhs.text.utf8.elementsEqual(rhs.text.utf8) }

    func hash(into hasher: inout Hasher) {
        for byte in text.utf8 { hasher.combine(byte) }
    }
}

extension String {
    /// True when both have the same UTF-8 bytes (not merely canonically equivalent).
    func isByteEqual(to other: String) -> Bool { utf8.elementsEqual(other.utf8) }
}
