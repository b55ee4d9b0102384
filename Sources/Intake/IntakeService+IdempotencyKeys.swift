import Foundation
import Logging
import Rentals
import Spool

/// Idempotency keys: the record `submit --idempotency-key` keeps per caller and key (the request
/// it created, checksummed), and the rule that a key is never reused for another request.
extension IntakeService {
    /// Refuses an idempotency key reused for a different request (as payment APIs do): a retry
    /// must carry the same customer, contact, size and period as the submit it repeats.
    ///
    /// - Throws: ``IntakeError`` with exit 65 naming the fields that differ.
    static func requireSameRequest(_ earlier: RentalRequest, _ retry: RentalRequest, key: String) throws(IntakeError) {
        var differing: [String] = []
        if earlier.customer != retry.customer { differing.append("customer") }
        if earlier.contact != retry.contact { differing.append("contact") }
        if earlier.size != retry.size { differing.append("size") }
        if earlier.period != retry.period { differing.append("period") }
        if earlier.site != retry.site { differing.append("site") }
        if earlier.waitlist != retry.waitlist { differing.append("waitlist") }
        guard !differing.isEmpty else { return }
        throw IntakeError(.badData, "idempotency key \(key.echoed) was already used for request \(earlier.id) with a different \(differing.joined(separator: ", ")); use a new key for a new request")
    }

    func keyName(_ key: String, _ caller: Caller) -> String { "\(caller.uid)-\(key)" }

    /// An idempotency key's record: the request as canonical JSON (one line), then
    /// `crc32 <8 hex digits of the JSON's CRC-32>` and a newline. Without the checksum a flipped
    /// byte inside a value (the request's id) still decoded, and a retried submit queued the
    /// "recorded" request under the damaged id: a second request.
    static func keyRecord(_ request: RentalRequest) -> [UInt8] {
        let json = canonicalJSON(request)
        return json + Array("\ncrc32 \(hex8(CRC32.checksum(json)))\n".utf8)
    }

    /// The request in a key record; nil when it is damaged (checksum or JSON). A record without
    /// a checksum line (written before they were added) is read as JSON alone.
    static func request(inKeyRecord bytes: [UInt8]) -> RentalRequest? {
        var json = bytes[...]
        if let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) {
            json = bytes[..<newline]
            guard Array(bytes[(newline + 1)...]) == Array("crc32 \(hex8(CRC32.checksum(json)))\n".utf8) else { return nil }
        }
        return try? JSONDecoder().decode(RentalRequest.self, from: Data(json))
    }

    private static func hex8(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    func recordedRequest(key: String, caller: Caller) throws(IntakeError) -> RentalRequest? {
        let bytes: [UInt8]?
        do { bytes = try keys.read(keyName(key, caller)) } catch {
            throw IntakeError(error, doing: "reading the idempotency key")
        }
        guard let bytes else { return nil }
        return try decodedRecord(bytes, key: key, caller: caller)
    }

    /// The request an idempotency key's record names. A record that cannot be decoded (a flipped
    /// byte, a truncation) is never read as "no request yet": that would queue a second request
    /// for a retried submit. Its copy is kept in `corrupt/` and the submit is refused.
    ///
    /// - Throws: ``IntakeError`` with exit 65 naming the key and the copy.
    func decodedRecord(_ bytes: [UInt8], key: String, caller: Caller) throws(IntakeError) -> RentalRequest {
        if let request = Self.request(inKeyRecord: bytes) { return request }
        let name = keyName(key, caller)
        let copy: String
        do { copy = try keys.keepDamagedCopy(of: name, bytes: bytes, label: "idempotency-key") } catch {
            copy = "no copy: \(error)"
        }
        logger.error("idempotency key record damaged", metadata: ["key": "\(name)", "copy": "\(copy)"])
        throw IntakeError(.badData, "the record of idempotency key \(key.echoed) is damaged (\(copy)), so the request it names cannot be looked up; nothing was submitted: see spoolctl list, or submit with a new key")
    }
}
