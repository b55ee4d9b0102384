// The fuzz targets: every decoder of the product, each with the properties its result must
// have. Shared by the libFuzzer driver (`Fuzz/`, `spool-fuzz`) and by the replay of the corpora
// in the test suite (`Tests/SpoolTests/FuzzTargets` is a link to this directory), so a crasher
// kept in `Fuzz/Corpus/<target>/` fails CI exactly as it failed under the fuzzer.
import Foundation

/// One fuzz target: a decoder driven with arbitrary bytes, and the properties checked on what it
/// returns beyond "no crash": round trips (decode ∘ encode is the identity where an encoder
/// exists), never accepting and then misreporting (a record whose checksum fails is never
/// returned), invariants of the decoded values.
public struct FuzzTarget: Sendable {
    /// The target's name: its corpus is `Fuzz/Corpus/<name>/`.
    public let name: String
    /// What it decodes, in words.
    public let summary: String
    /// Runs the decoder on `input` and returns the violated properties (empty when all hold).
    public let check: @Sendable (_ input: [UInt8]) -> [String]

    /// Every target, in the order campaigns run them.
    public static let all: [FuzzTarget] = [
        itemFile, journalFrames, journalSegment, zlib, indexEvent, statusDocument,
        configuration, unitImport, dates, queuePayloads,
    ]

    /// The target called `name`.
    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}

/// Collects violated properties: `expect(condition, "what should hold")`.
struct Violations {
    private(set) var found: [String] = []

    mutating func expect(_ condition: @autoclosure () -> Bool, _ property: @autoclosure () -> String) {
        if !condition() { found.append(property()) }
    }
}

extension Array where Element == UInt8 {
    /// The bytes as (possibly repaired) UTF-8 text.
    var fuzzText: String { String(decoding: self, as: UTF8.self) }

    /// The bytes split at `separator` (kept empty pieces).
    func fuzzFields(_ separator: UInt8 = UInt8(ascii: "\n")) -> [[UInt8]] {
        split(separator: separator, omittingEmptySubsequences: false).map(Array.init)
    }
}

/// A short, printable description of an input or value for a violation message.
func fuzzQuoted(_ value: Any) -> String {
    let text = "\(value)"
    return text.count <= 200 ? text.debugDescription : String(text.prefix(200)).debugDescription + "…"
}
