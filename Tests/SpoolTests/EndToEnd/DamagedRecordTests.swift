import Foundation
import Intake
import Rentals
import Testing
@testable import Spool

/// Damaged small records (`intake/keys/`, …) through the real executables: a record that
/// cannot be read is kept in `corrupt/` and refused, never taken for a missing one.
@Suite(.serialized) struct DamagedRecordTests {
    /// A flipped byte or a truncation in an idempotency key's record must not make a retried
    /// submit queue a second request (it did: the record read as "no request yet").
    @Test(arguments: ["flip", "truncate"])
    func damagedIdempotencyKeyNeverQueuesASecondRequest(damage: String) throws {
        let system = try SystemFixture()
        let first = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01", extra: ["--idempotency-key", "order-7"])
        let record = "\(system.spool)/intake/keys/\(getuid())-order-7"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: record)))
        // Records carry no checksum: the flip hits the structure (`{`); one inside a value can pass.
        if damage == "flip" { bytes[0] ^= 0x5a } else { bytes = Array(bytes.prefix(bytes.count / 3)) }
        try Data(bytes).write(to: URL(fileURLWithPath: record))

        for _ in 0..<2 {
            let again = try system.ctl("submit", "--customer", "alice@example.com", "--contact", "alice@example.com", "--size", "M",
                                       "--from", "2099-01-01", "--to", "2099-02-01", "--idempotency-key", "order-7")
            #expect(again.status == 65, "\(again.output) \(again.errors)")
            #expect(again.errors.contains("idempotency key \"order-7\" is damaged"), "\(again.errors)")
        }
        #expect(try system.json([RentalStatus].self, "list").map(\.id) == [first])
        #expect(try Spool(path: system.spool).queue(.allocation).counts().ready == 1)
        let copies = try FileManager.default.contentsOfDirectory(atPath: "\(system.spool)/corrupt").filter { $0.hasPrefix("idempotency-key.") }
        #expect(copies.count == 1, "one copy however often it is read: \(copies)")
        if let copy = copies.first {
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(system.spool)/corrupt/\(copy)")) == Data(bytes))
        }
    }
}
