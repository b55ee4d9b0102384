import Allocator
import Foundation
import Intake
import Rentals
import Testing
@testable import Spool

/// A damaged allocator store (the allocator's source of truth) is detected, copied to
/// `corrupt/`, left in place and reported; the allocator exits 65 instead of restarting for
/// ever, `spoolctl units`/`reconcile` exit 65 with one line, and `submit` keeps working.
@Suite(.serialized) struct StoreDamageTests {
    enum Damage: CaseIterable {
        /// Every 97th byte of pages 2 and up flipped (what our adversary did).
        case bitFlips
        /// Cut after page 1 and a bit.
        case truncation
        /// Random bytes over the whole file.
        case garbage
        /// Only the last page (a table page the migrations never read): found by `quick_check`.
        case lastPage
    }

    /// A spool whose store holds 300 units and a decided rental, with the WAL checkpointed into
    /// the main file (by `reconcile`), then damaged. Returns the fixture and the store's path.
    private func damagedSystem(_ damage: Damage) throws -> (SystemFixture, String) {
        let system = try SystemFixture()
        let store = try AllocatorStore(spool: Spool(path: system.spool, create: true))
        try store.addUnits((1...300).map { StorageUnit(id: "U-\($0)", size: "M", site: "Site number \($0) on a long road") },
                           sizes: SizeClass.defaults)
        let reconciled = try system.ctl("reconcile")
        try #require(reconciled.status == 0, "\(reconciled.errors)")
        let path = system.spool + "/allocator/state.sqlite"
        let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        try #require(wal == 0, "the store's WAL is checkpointed")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        try #require(bytes.count >= 4 * 4096)
        switch damage {
        case .bitFlips:
            for offset in stride(from: 4096, to: bytes.count, by: 97) { bytes[offset] ^= 0xFF }
        case .truncation:
            bytes = Array(bytes[..<(4096 + 1000)])
        case .garbage:
            bytes = (0..<bytes.count).map { _ in UInt8.random(in: 0...255) }
        case .lastPage:
            for offset in stride(from: bytes.count - 4096 + 8, to: bytes.count, by: 97) { bytes[offset] ^= 0xFF }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (system, path)
    }

    private func corruptCopies(_ system: SystemFixture) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: system.spool + "/corrupt")) ?? [])
            .filter { $0.hasPrefix("allocator.state.sqlite.") }
    }

    @Test(arguments: Damage.allCases) func allocatorExits65OnceWithACopyInCorrupt(_ damage: Damage) throws {
        let (system, path) = try damagedSystem(damage)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let allocator = try ChildProcess("spool-allocator", [], environment: system.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 })
        defer { if allocator.process.isRunning { kill(allocator.process.processIdentifier, SIGKILL) } }
        // Not a retry loop: a damaged store is permanent, so start-up gives up at once.
        #expect(system.eventually(10) { !allocator.process.isRunning }, "the allocator exits by itself")
        if allocator.process.isRunning { kill(allocator.process.processIdentifier, SIGKILL) }
        let result = allocator.finish()
        #expect(result.status == 65, "\(result.errors)")
        let lines = result.errors.split(separator: "\n").filter { $0.contains("is damaged") }
        #expect(lines.count == 1, "\(result.errors)")
        let line = String(lines.first ?? "")
        #expect(line.contains(path) && line.contains("corrupt/allocator.state.sqlite.") && line.contains("Backup and restore")
                && line.contains("sqlite3 .recover"), "\(line)")
        #expect(!result.errors.contains("retrying"), "\(result.errors)")
        let copies = corruptCopies(system)
        #expect(copies.count == 1, "\(copies)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "the original is left in place, untouched")
        if let copy = copies.first {
            #expect(try Data(contentsOf: URL(fileURLWithPath: system.spool + "/corrupt/" + copy)) == before)
        }
    }

    @Test(arguments: [Damage.bitFlips, .garbage]) func spoolctlRefusesWith65AndSubmitStillWorks(_ damage: Damage) throws {
        let (system, _) = try damagedSystem(damage)
        for command in [["units", "list"], ["reconcile"], ["units", "add", "Z-1", "--size", "S", "--site", "x"]] {
            let result = try system.ctl(command)
            #expect(result.status == 65, "\(command): \(result.errors)")
            let lines = result.errors.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains("state.sqlite is damaged"), "\(command): \(result.errors)")
        }
        #expect(corruptCopies(system).count == 1, "the same damage is copied once")
        let submitted = try system.ctl(["submit", "--customer", "bob@example.com", "--contact", "bob@example.com",
                                        "--size", "S", "--from", "2099-03-01", "--to", "2099-04-01", "--json"])
        #expect(submitted.status == 0, "\(submitted.errors)")
    }

    /// `up` with a damaged store: the store opens (only the last page is bad), the allocator
    /// finds the damage at start-up and exits 65, and `up` stops instead of restarting it.
    @Test(arguments: [Damage.lastPage, .bitFlips]) func upStopsInsteadOfRestarting(_ damage: Damage) throws {
        let (system, _) = try damagedSystem(damage)
        let up = try ChildProcess("spoolctl", ["up", "--no-sample"], environment: system.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 })
        defer { if up.process.isRunning { kill(up.process.processIdentifier, SIGKILL) } }
        #expect(system.eventually(15) { !up.process.isRunning }, "up stops by itself")
        if up.process.isRunning { kill(up.process.processIdentifier, SIGTERM) }
        let result = up.finish()
        #expect(result.status == 65, "\(result.errors)")
        #expect(result.errors.contains("is damaged") || result.errors.contains("its data is damaged"), "\(result.errors)")
        #expect(!result.errors.contains("restarting it"), "\(result.errors)")
        #expect(corruptCopies(system).count == 1)
    }
}
