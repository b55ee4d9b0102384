import Foundation
import Testing
@testable import Allocator
@testable import Rentals
@testable import Spool

/// The backup procedure of docs/operations.md ("Backup and restore"), end to end: `spoolctl
/// backup DIR` while both daemons run and a submit loop goes on, then a restore into a fresh
/// spool elsewhere (`cp -a DIR/. ROOT/`, `spoolctl reconcile --rebuild-index`, start the
/// daemons). Every request acknowledged before the backup started is there and decided, no unit
/// is booked twice, and the restored system serves new requests.
struct BackupRestoreTests {
    /// Acknowledged submits of the loop, in order.
    private final class Acknowledged: @unchecked Sendable {
        private let lock = NSLock()
        private var ids: [String] = []
        private var stopped = false
        var count: Int { lock.withLock { ids.count } }
        var all: [String] { lock.withLock { ids } }
        var isStopped: Bool { lock.withLock { stopped } }
        func add(_ id: String) { lock.withLock { ids.append(id) } }
        func stop() { lock.withLock { stopped = true } }
    }

    @Test func aBackupTakenUnderLoadRestoresEveryAcknowledgedRequest() throws {
        let system = try SystemFixture()
        try system.addUnits((1...6).map { ("S-\($0)", "S") })
        try system.startBoth()
        let acknowledged = Acknowledged()
        let loop = Thread {
            var index = 0
            while !acknowledged.isStopped {
                // Overlapping periods on six units: some are assigned, some rejected.
                let month = 1 + index % 12, months = 1 + index % 3
                let from = String(format: "2099-%02d-01", month)
                if let result = try? system.ctl(["submit", "--customer", "c\(index)@example.com", "--contact", "c\(index)@example.com",
                                                 "--size", "S", "--from", from, "--months", String(months), "--json"]),
                   result.status == 0,
                   let object = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
                   let id = object["id"] as? String {
                    acknowledged.add(id)
                }
                index += 1
            }
        }
        loop.start()
        defer { acknowledged.stop() }
        #expect(system.eventually(60) { acknowledged.count >= 30 })
        // A backlog at the moment the backup starts, and a backup that takes a while between
        // copying the queues and the store (a large file in archive/): the allocator decides
        // and removes the waiting requests meanwhile. A copy that took the store before the
        // queues would lose them; this one must not.
        system.stop("spool-allocator")
        let stoppedAt = acknowledged.count
        #expect(system.eventually(60) { acknowledged.count >= stoppedAt + 25 })
        try FileManager.default.createDirectory(atPath: "\(system.spool)/archive", withIntermediateDirectories: true)
        try SetgidInstallation.require("head -c 120000000 /dev/zero > \(system.spool)/archive/large")
        try system.start("spool-allocator")
        let before = acknowledged.all
        let copy = system.directory.sub("backup")
        let backup = try system.ctl("backup", copy, "--json")
        #expect(backup.status == 0, "\(backup.errors)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(backup.output.utf8)) as? [String: Any])
        #expect((report["files"] as? Int ?? 0) > 3 && (report["journal_segments"] as? Int ?? 0) >= 1, "\(report)")
        let countAtBackup = acknowledged.count
        #expect(system.eventually(60) { acknowledged.count >= countAtBackup + 10 }, "submits went on during and after the backup")
        acknowledged.stop()
        while !loop.isFinished { usleep(10_000) }
        system.stop("spool-allocator")
        system.stop("spool-notifier")
        #expect(FileManager.default.fileExists(atPath: "\(copy)/MANIFEST") && !FileManager.default.fileExists(atPath: "\(copy)/index"))

        // Restore on "another machine": a fresh spool root elsewhere, as documented.
        let restored = try SystemFixture()
        try SetgidInstallation.require("mkdir -p \(restored.spool) && cp -a \(copy)/. \(restored.spool)/ && rm \(restored.spool)/MANIFEST")
        let reconcile = try restored.ctl("reconcile", "--rebuild-index")
        #expect(reconcile.status == 0, "\(reconcile.errors)")
        try restored.startBoth()
        var statuses: [String: RentalStatus] = [:]
        let settled = restored.eventually(90) {
            guard let list = try? restored.json([RentalStatus].self, "list") else { return false }
            statuses = Dictionary(list.map { ($0.id, $0) }) { first, _ in first }
            return before.allSatisfy { id in
                guard let status = statuses[id] else { return false }
                return status.state == .confirmed || (status.state == .rejected && status.notifiedAt != nil)
            }
        }
        let missing = before.filter { statuses[$0] == nil }
        #expect(settled, "acknowledged before the backup but missing or undecided after the restore: \(missing.count) of \(before.count): \(missing.prefix(5))")
        for id in before {
            guard let status = statuses[id] else { continue }
            #expect((status.state == .confirmed) == (status.unit != nil), "\(id): \(status.state) with unit \(status.unit ?? "none")")
        }
        // The allocator store (the source of truth) holds exactly the assignments the index
        // shows: a decision the store lost would leave its unit free to be booked again.
        let stored = try AllocatorStore(spool: Spool(path: restored.spool), readOnly: true).assignments()
        let storedByRequest = Dictionary(stored.map { ($0.request, $0) }) { first, _ in first }
        for status in statuses.values where status.state == .assigned || status.state == .confirmed {
            let held = storedByRequest[status.id]
            #expect(held?.unit == status.unit && held?.period.start == status.from && held?.period.end == status.to,
                    "\(status.id) is \(status.state) on \(status.unit ?? "-") in the index but the store holds \(String(describing: held))")
        }
        for (unit, rentals) in Dictionary(grouping: stored, by: \.unit) {
            let sorted = rentals.sorted { $0.period.start < $1.period.start }
            for (earlier, later) in zip(sorted, sorted.dropFirst()) {
                #expect(earlier.period.end <= later.period.start, "unit \(unit) booked twice in the store: \(earlier.request) and \(later.request)")
            }
        }
        // No unit is held by two requests for one day.
        let holding = statuses.values.filter { $0.state == .assigned || $0.state == .confirmed }
        for (unit, rentals) in Dictionary(grouping: holding, by: { $0.unit ?? "" }) {
            let sorted = rentals.sorted { $0.from < $1.from }
            for (earlier, later) in zip(sorted, sorted.dropFirst()) {
                #expect(earlier.to <= later.from, "unit \(unit) booked twice: \(earlier.id) and \(later.id)")
            }
        }
        // The restored system serves new requests, and reconciles cleanly.
        let fresh = try restored.ctl("submit", "--customer", "new@example.com", "--contact", "new@example.com", "--size", "S",
                                     "--from", "2101-01-01", "--months", "1", "--wait", "30")
        #expect(fresh.status == 0 && (fresh.output.contains("assigned") || fresh.output.contains("confirmed")) && fresh.output.contains("unit S-"),
                "\(fresh.output) \(fresh.errors)")
        #expect(try restored.ctl("reconcile").status == 0)
    }

    /// The copy would hold every file of the group-private spool: not even an operator gets it
    /// through the setgid bit; the spool's own user and root do.
    @Test func onlyRootAndTheSpoolUserMayBackUp() throws {
        let install = try SetgidInstallation("backup-rights")
        _ = try install.submit(as: "spool-alice", customer: "alice@example.com")
        try SetgidInstallation.require("chmod 1777 \(install.base)")
        for user in ["spool-carol", "spool-bob"] {
            let result = try install.run(as: user, ["spoolctl", "backup", "\(install.base)/by-\(user)"])
            #expect(result.status == 77, "\(user): \(result.status) \(result.errors)")
            #expect(!FileManager.default.fileExists(atPath: "\(install.base)/by-\(user)"))
        }
        let byDaemonUser = try install.run(as: "spool-daemon", ["spoolctl", "backup", "\(install.base)/by-daemon", "--spool", install.spool])
        #expect(byDaemonUser.status == 0, "\(byDaemonUser.status) \(byDaemonUser.errors)")
        #expect(FileManager.default.fileExists(atPath: "\(install.base)/by-daemon/MANIFEST"))
    }

    /// A backup that runs out of space exits 75 and leaves nothing behind: no DIR, no partial copy.
    @Test func aFullDiskLeavesNothingBehind() throws {
        let system = try SystemFixture()
        try system.addUnits([("S-1", "S")])
        _ = try system.submit(size: "S", from: "2099-01-01", to: "2099-02-01")
        try FileManager.default.createDirectory(atPath: "\(system.spool)/archive", withIntermediateDirectories: true)
        try SetgidInstallation.require("head -c 4000000 /dev/urandom > \(system.spool)/archive/large")
        let small = system.directory.sub("small")
        try SetgidInstallation.require("mkdir \(small) && mount -t tmpfs -o size=2m tmpfs \(small)")
        defer { SetgidInstallation.sh("umount \(small)") }
        let result = try system.ctl("backup", "\(small)/copy")
        #expect(result.status == 75, "\(result.status) \(result.errors)")
        #expect(result.errors.contains("No space left on device"), "\(result.errors)")
        let left = try FileManager.default.contentsOfDirectory(atPath: small)
        #expect(left.isEmpty, "left behind: \(left)")
    }
}
