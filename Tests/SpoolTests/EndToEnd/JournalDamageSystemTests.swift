import Foundation
import Intake
import Rentals
import Testing
@testable import Spool

/// A damaged journal through the real programs: `index rebuild` and `reconcile` say what was lost
/// and exit 65, and `reconcile` restores the allocator's decisions from its own store.
@Suite(.serialized) struct JournalDamageSystemTests {
    @Test func damagedLiveSegmentIsReportedAndReconcileRestoresTheDecisions() throws {
        let system = try SystemFixture()
        try system.addUnits((1...8).map { ("U-\($0)", "M") })
        try system.startBoth()
        var units: [String: String] = [:]
        var ids: [String] = []
        for month in 1...8 {
            let id = try system.submit(size: "M", from: "2099-0\(month)-01", to: "2099-0\(month + 1)-01")
            units[id] = try system.waitFor(id, .confirmed).unit
            ids.append(id)
        }
        #expect(system.stop("spool-allocator") == 0)
        #expect(system.stop("spool-notifier") == 0)

        // Overwrite the middle of the live segment: every event of the middle requests is gone.
        let journal = "\(system.spool)/journal"
        let live = try #require(try FileManager.default.contentsOfDirectory(atPath: journal).first { $0.hasSuffix(".log") })
        var bytes = try Data(contentsOf: URL(fileURLWithPath: "\(journal)/\(live)"))
        let damaged = bytes.count * 35 / 100..<bytes.count * 65 / 100
        bytes.replaceSubrange(damaged, with: Data(repeating: 0x5A, count: damaged.count))
        try bytes.write(to: URL(fileURLWithPath: "\(journal)/\(live)"))

        let rebuild = try system.ctl("index", "rebuild")
        #expect(rebuild.status == 65, "\(rebuild.output) \(rebuild.errors)")
        #expect(rebuild.errors.contains("the journal is damaged: \(live)") && rebuild.errors.contains("copy in corrupt/journal.\(live)."))
        #expect(rebuild.output.contains("damaged: journal segment \(live)"))
        // Every request whose events survived is shown; the others are missing.
        let surviving = try system.journalTexts().joined(separator: "\n")
        var lost: [String] = []
        for id in ids {
            let shown = try system.ctl("status", id).status == 0
            #expect(shown == surviving.contains(id), "\(id)")
            if !shown { lost.append(id) }
        }
        #expect(!lost.isEmpty)
        #expect(FileManager.default.fileExists(atPath: "\(system.spool)/corrupt") &&
                !filesBelow("\(system.spool)/corrupt").filter { $0.hasPrefix("journal.\(live).") }.isEmpty)

        // reconcile puts the allocator's decisions back: into the journal, then the index.
        let reconcile = try system.ctl("reconcile", "--rebuild-index", "--json")
        #expect(reconcile.status == 65, "\(reconcile.errors)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(reconcile.output.utf8)) as? [String: Any])
        #expect(Set(summary["restored_requests"] as? [String] ?? []).isSuperset(of: lost))
        #expect((summary["journal_damage"] as? [Any])?.count == 1)
        for id in ids {
            let status = try system.status(id)
            #expect(status.unit == units[id])
            // The allocator's decision, with the notifier's recorded delivery: confirmed again.
            #expect(status.state == .confirmed && status.notifiedAt != nil, "\(id): \(status.state)")
        }
        // The restored decisions are in the journal now: a rebuild keeps them.
        #expect(try system.ctl("index", "rebuild").status == 65)
        for id in lost { #expect(try system.status(id).state == .confirmed) }
    }

    /// A sealed segment cut short: its requests' decisions were in it. `reconcile` exits 65 naming
    /// it, and restores every decision from the allocator store (they no longer show `received`
    /// or nothing at all).
    @Test func truncatedSealedSegmentIsReportedAndReconcileRestoresTheDecisions() throws {
        let system = try SystemFixture()
        try system.addUnits([("S-1", "S")])
        try system.startBoth()
        var ids: [String] = []
        for month in 1...6 {
            let id = try system.submit(size: "S", from: "2099-0\(month)-01", to: "2099-0\(month)-20")
            _ = try system.waitFor(id, .confirmed)
            ids.append(id)
        }
        #expect(system.stop("spool-allocator") == 0)
        #expect(system.stop("spool-notifier") == 0)
        try Journal(spool: Spool(path: system.spool)).rotate()
        let journal = "\(system.spool)/journal"
        let sealed = try #require(try FileManager.default.contentsOfDirectory(atPath: journal).first { $0.hasSuffix(".log.z") })
        let compressed = try Data(contentsOf: URL(fileURLWithPath: "\(journal)/\(sealed)"))
        try compressed.prefix(compressed.count * 2 / 5).write(to: URL(fileURLWithPath: "\(journal)/\(sealed)"))

        let reconcile = try system.ctl("reconcile", "--rebuild-index")
        #expect(reconcile.status == 65, "\(reconcile.output) \(reconcile.errors)")
        #expect(reconcile.errors.contains("the journal is damaged: \(sealed)") && reconcile.errors.contains("restored"))
        #expect(reconcile.output.contains("damaged: journal segment \(sealed)"))
        for id in ids {
            let status = try system.status(id)
            #expect(status.state == .confirmed, "\(id): \(status.state)")
            #expect(status.unit == "S-1")
        }
    }
}
