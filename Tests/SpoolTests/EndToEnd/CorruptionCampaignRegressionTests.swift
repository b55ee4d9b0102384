import Foundation
import GRDB
import Intake
import Rentals
import Testing
@testable import Spool

/// Holes the corruption campaign (`scripts/torture.d/corruption`) found, through the real
/// executables.
@Suite(.serialized) struct CorruptionCampaignRegressionTests {
    /// A queue item is the only copy of a command until its consumer takes it. A damaged one is
    /// quarantined by the consumer; the request then stayed `received` (allocate command) or
    /// `assigned` (notification) for ever, and `reconcile` exited 0. Now `reconcile` queues again
    /// what the lost item held, from the journal (the request's `received` status) and the
    /// allocator store (the decision), and the daemons finish the saga.
    @Test func damagedQueueItemsAreQueuedAgainByReconcile() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "M"), ("A-2", "M")])
        try system.start("spool-allocator")
        let decided = try system.submit(customer: "bob@example.com", size: "M", from: "2099-01-01", to: "2099-02-01")
        _ = try system.waitFor(decided, .assigned)
        system.stop("spool-allocator")
        let waiting = try system.submit(size: "M", from: "2099-03-01", to: "2099-04-01")

        // Damage the allocate command of `waiting` and the confirmation of `decided`: one byte
        // of each payload (the last byte of the file), caught by the item's CRC.
        let queues = "\(system.spool)/queues"
        let items = try FileManager.default.subpathsOfDirectory(atPath: queues).filter {
            $0.contains("/ready/") && ($0.hasSuffix(".0.0"))
        }
        let allocate = try #require(items.first { $0.hasPrefix("allocation/") && $0.contains(waiting) })
        let notify = try #require(items.first { $0.hasPrefix("notifications/") && $0.contains(decided) })
        for item in [allocate, notify] {
            let path = "\(queues)/\(item)"
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[bytes.count - 2] ^= 0x20
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }

        // The daemons quarantine both and go on.
        try system.startBoth()
        let counts = { (name: QueueName) throws -> QueueCounts in try Spool(path: system.spool).queue(name).counts() }
        #expect(system.eventually {
            let copies = (try? FileManager.default.contentsOfDirectory(atPath: "\(system.spool)/corrupt")) ?? []
            return copies.count == 2 && (try? counts(.allocation))?.ready == 0 && (try? counts(.notifications))?.ready == 0
        }, "both damaged items quarantined")
        #expect(try system.status(waiting).state == .received)
        #expect(try system.status(decided).state == .assigned)

        let reconcile = try system.ctl("reconcile", "--json")
        #expect(reconcile.status == 0, "\(reconcile.errors)")
        let summary = try JSONSerialization.jsonObject(with: Data(reconcile.output.utf8)) as? [String: Any]
        #expect(summary?["lost_commands_requeued"] as? Int == 1, "\(reconcile.output)")
        #expect(summary?["lost_notifications_requeued"] as? Int == 1, "\(reconcile.output)")

        _ = try system.waitFor(waiting, .confirmed)
        _ = try system.waitFor(decided, .confirmed)
        #expect(system.mailbox("alice@example.com") == ["\(waiting)-confirmation"])
        #expect(system.mailbox("bob@example.com") == ["\(decided)-confirmation"])

        // Nothing more is lost: a second reconcile queues nothing again.
        let again = try system.ctl("reconcile", "--json")
        let second = try JSONSerialization.jsonObject(with: Data(again.output.utf8)) as? [String: Any]
        #expect(second?["lost_commands_requeued"] as? Int == 0 && second?["lost_notifications_requeued"] as? Int == 0, "\(again.output)")
    }

    /// A zero-length allocator store was taken for a new one: silently re-created empty, so
    /// every unit and decision was gone and the queued requests were rejected against an empty
    /// inventory. Now the store is created whole (staged, migrated, renamed into place), and a
    /// zero-length one is damage like any other: copied to `corrupt/`, left in place, exit 65.
    @Test func zeroLengthStoreIsDamageNotANewStore() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "M")])
        let reconciled = try system.ctl("reconcile")  // checkpoints the store's WAL into the file
        try #require(reconciled.status == 0, "\(reconciled.errors)")
        let path = system.spool + "/allocator/state.sqlite"
        try #require(truncate(path, 0) == 0)
        let waiting = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01")

        for arguments in [["units", "list"], ["reconcile"]] {
            let result = try system.ctl(arguments)
            #expect(result.status == 65, "\(arguments): \(result.output) \(result.errors)")
            #expect(result.errors.contains("state.sqlite is damaged (zero-length file"), "\(result.errors)")
        }
        let allocator = try ChildProcess("spool-allocator", [], environment: system.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 })
        let exited = system.eventually(15) { !allocator.process.isRunning }
        if !exited { kill(allocator.process.processIdentifier, SIGKILL) }
        let exit = allocator.finish()
        #expect(exited && exit.status == 65, "\(exit.errors)")
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) == 0, "left in place, not re-created")
        let copies = try FileManager.default.contentsOfDirectory(atPath: system.spool + "/corrupt").filter { $0.hasPrefix("allocator.state.sqlite.") }
        #expect(copies.count == 1, "\(copies)")
        #expect(try system.status(waiting).state == .received, "not rejected against an empty inventory")
    }

    /// A damaged byte in the store's schema text that still parses (here a column renamed)
    /// passes `quick_check`; every statement then failed with "no such column" (SQLITE_ERROR,
    /// not damage), so the allocator exited 74 and systemd restarted it for ever. Now the
    /// schema is compared with the migrator's at every opening: damage, exit 65, copy kept.
    @Test func damagedSchemaTextIsDamageNotARestartLoop() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "M")])
        let reconciled = try system.ctl("reconcile")  // checkpoints the store's WAL into the file
        try #require(reconciled.status == 0, "\(reconciled.errors)")
        let path = system.spool + "/allocator/state.sqlite"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let column = Array("item_id TEXT".utf8)
        let at = try #require((0...(bytes.count - column.count)).first { Array(bytes[$0..<($0 + column.count)]) == column })
        bytes[at + 2] = UInt8(ascii: "a")  // "iaem_id"
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        for arguments in [["units", "list"], ["reconcile"]] {
            let result = try system.ctl(arguments)
            #expect(result.status == 65, "\(arguments): \(result.output) \(result.errors)")
            #expect(result.errors.contains("schema differs"), "\(result.errors)")
        }
        let allocator = try ChildProcess("spool-allocator", [], environment: system.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 })
        let exited = system.eventually(15) { !allocator.process.isRunning }
        if !exited { kill(allocator.process.processIdentifier, SIGKILL) }
        let exit = allocator.finish()
        #expect(exited && exit.status == 65, "exits 65, which systemd does not restart: \(exit.status) \(exit.errors)")
        let copies = try FileManager.default.contentsOfDirectory(atPath: system.spool + "/corrupt").filter { $0.hasPrefix("allocator.state.sqlite.") }
        #expect(copies.count == 1, "\(copies)")
    }

    /// A garbage `state/allocator-health` (or `state/breaker`) read as a healthy allocator (a
    /// closed breaker) and left no trace. Now it is kept in `corrupt/` as damage; submissions
    /// go on (it reads as absent, and its writers replace it).
    @Test(arguments: ["allocator-health", "breaker"])
    func damagedStateRecordIsKeptInCorrupt(record: String) throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "M")])
        try FileManager.default.createDirectory(atPath: system.spool + "/state", withIntermediateDirectories: true)
        let garbage = Data("{\"consecutive_failures\":\u{7}9,".utf8)
        try garbage.write(to: URL(fileURLWithPath: "\(system.spool)/state/\(record)"))
        _ = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01")
        let copies = try FileManager.default.contentsOfDirectory(atPath: system.spool + "/corrupt").filter { $0.hasPrefix("state.\(record).") }
        #expect(copies.count == 1, "\(copies)")
        if let copy = copies.first {
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(system.spool)/corrupt/\(copy)")) == garbage)
        }
    }

    /// A stored value of another type (here a rental's `start_day` holding text, which the
    /// page checks cannot see) was read with GRDB's subscript, which traps: the allocator
    /// crashed (exit by signal) on every start, and systemd restarted it for ever. Values are
    /// now decoded with throwing calls and checked (a day within years 0–9999, a non-empty
    /// period): damage, exit 65 once, copy in `corrupt/`. (A NULL, which only damage can put
    /// there past the NOT NULL constraint, is decoded the same way.)
    @Test(arguments: ["'garbage'", "9223372036854775000", "end_day + 10"])
    func damagedValueInTheStoreIsDamageNotACrash(value: String) throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "M")])
        try system.start("spool-allocator")
        let first = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01")
        _ = try system.waitFor(first, .assigned)
        system.stop("spool-allocator")
        let store = try DatabaseQueue(path: system.spool + "/allocator/state.sqlite")
        try store.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA ignore_check_constraints = ON")
            try db.execute(sql: "UPDATE rental SET start_day = \(value)")
        }
        try store.close()
        _ = try system.submit(size: "M", from: "2099-01-15", to: "2099-03-01")

        let allocator = try ChildProcess("spool-allocator", [], environment: system.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 })
        let exited = system.eventually(20) { !allocator.process.isRunning }
        if !exited { kill(allocator.process.processIdentifier, SIGKILL) }
        let exit = allocator.finish()
        #expect(exited && exit.status == 65 && allocator.process.terminationReason == .exit,
                "exits 65 (not by a signal): \(exit.status) \(exit.errors.suffix(500))")
        #expect(exit.errors.contains("is damaged"), "\(exit.errors.suffix(500))")
        let copies = try FileManager.default.contentsOfDirectory(atPath: system.spool + "/corrupt").filter { $0.hasPrefix("allocator.state.sqlite.") }
        #expect(copies.count == 1, "\(copies)")
    }

    /// An idempotency key's record carried no checksum: a flipped byte inside the request's id
    /// still decoded, the retried submit found no request under that id ("recorded, then
    /// crashed before queueing") and queued the recorded request under the damaged id: a second
    /// request for one key. The record now ends with the JSON's CRC-32; the damage is refused
    /// (65, copy in `corrupt/`).
    @Test func flippedIdInAnIdempotencyRecordNeverQueuesASecondRequest() throws {
        let system = try SystemFixture()
        let first = try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01", extra: ["--idempotency-key", "order-9"])
        let record = "\(system.spool)/intake/keys/\(getuid())-order-9"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: record)))
        let marker = Array("\"id\":\"\(first)\"".utf8)
        let at = try #require((0...(bytes.count - marker.count)).first { Array(bytes[$0..<($0 + marker.count)]) == marker })
        let last = at + marker.count - 2  // the id's last character, replaced by another valid one
        bytes[last] = bytes[last] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        try Data(bytes).write(to: URL(fileURLWithPath: record))

        let again = try system.ctl("submit", "--customer", "alice@example.com", "--contact", "alice@example.com", "--size", "M",
                                   "--from", "2099-01-01", "--to", "2099-02-01", "--idempotency-key", "order-9")
        #expect(again.status == 65, "\(again.output) \(again.errors)")
        #expect(try system.json([RentalStatus].self, "list").map(\.id) == [first])
        #expect(try Spool(path: system.spool).queue(.allocation).counts().ready == 1, "no second request queued")
        let copies = try FileManager.default.contentsOfDirectory(atPath: "\(system.spool)/corrupt").filter { $0.hasPrefix("idempotency-key.") }
        #expect(copies.count == 1, "\(copies)")
    }
}
