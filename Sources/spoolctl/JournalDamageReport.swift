import Foundation
import Intake
import Rentals
import Spool

/// What `reconcile` and `index rebuild` say about a damaged journal: the damaged segments (each
/// copied to `corrupt/`), the requests restored from the allocator store, and the requests named
/// in damaged bytes that are still missing from the index. Damage makes the command exit 65
/// (bad data) after it has done all its work.
struct JournalDamageReport {
    var damage: [JournalDamage] = []
    var restored: [String] = []
    var unrestored: [String] = []

    /// Entities legible in the damaged bytes that the index does not hold.
    static func unrestored(_ damage: [JournalDamage], index: StatusIndex) throws -> [String] {
        var missing: [String] = []
        for id in damage.flatMap(\.entities) where !missing.contains(id) {
            if try index.entity(id) == nil { missing.append(id) }
        }
        return missing
    }

    var jsonFields: [String: Any] {
        let encoder = JSONEncoder()
        let damageObjects = damage.compactMap { item -> Any? in
            guard let data = try? encoder.encode(item) else { return nil }
            return try? JSONSerialization.jsonObject(with: data)
        }
        return ["journal_damage": damageObjects, "restored_requests": restored, "unrestored_requests": unrestored]
    }

    /// Human detail lines after the summary table (nothing for a healthy journal).
    func printDetails() throws {
        for item in damage { try emit("damaged: \(item)") }
        if !restored.isEmpty { try emit("restored from the allocator store: \(restored.joined(separator: ", "))") }
        if !unrestored.isEmpty { try emit("named in damaged records and not restored: \(unrestored.joined(separator: ", "))") }
    }

    /// The failure to exit with when the journal is damaged (65), naming what was lost.
    func failure(hint: String? = nil) -> Failure? {
        guard !damage.isEmpty else { return nil }
        var message = "the journal is damaged: " + damage.map { item in
            "\(item.segment) (\(item.bytesLost) bytes unreadable\(item.copy.map { ", copy in \($0)" } ?? ""))"
        }.joined(separator: ", ")
        if !restored.isEmpty { message += "; restored \(restored.count) request(s) from the allocator store" }
        if !unrestored.isEmpty { message += "; not restored: \(unrestored.prefix(20).joined(separator: ", "))\(unrestored.count > 20 ? ", …" : "")" }
        if let hint { message += "; \(hint)" }
        return Failure(IntakeError(.badData, message), json: false)
    }

    var failure: Failure? { failure() }
}
