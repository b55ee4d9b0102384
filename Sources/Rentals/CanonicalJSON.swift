import Foundation

/// Canonical JSON (sorted keys, unescaped slashes) of a value whose encoding cannot fail: the
/// encoding of the messages between the programs (queue payloads, records, index documents).
public func canonicalJSON<T: Encodable>(_ value: T) -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return Array((try? encoder.encode(value)) ?? Data())
}
