import Foundation
import GRDB
import Logging
import Rentals
import Testing
@testable import Allocator
@testable import Spool

/// The read model of `spoolctl availability` (``StoreReader``, ``AvailabilityQuery``): answers
/// equal an independent count over the store's rows, a reader never writes, migrates or blocks
/// the allocator, and a reader that cannot answer in time says so (exit 75) instead of hanging.
@Suite struct AvailabilityQueryTests {
    private static let origin = CalendarDay(iso: "2099-01-01")!
    private static let sites = ["east", "main", "north"]

    /// A random store: units of three sizes at three sites (some retired), each holding
    /// non-overlapping assigned rentals, and finished rentals anywhere (never holdings).
    private func fillRandomly(_ store: AllocatorStore, _ random: inout SeededGenerator) throws {
        var units: [StorageUnit] = []
        for size in ["S", "M", "L"] {
            for index in 0..<Int.random(in: 0...7, using: &random) {
                units.append(StorageUnit(id: "\(size)\(index)", size: size, site: Self.sites.randomElement(using: &random)!))
            }
        }
        try store.addUnits(units, sizes: SizeClass.defaults)
        for unit in units where Int.random(in: 0..<6, using: &random) == 0 { try store.retireUnit(unit.id) }
        try store.write { db in
            var serial = 0
            func insert(_ unit: String, _ state: String, _ start: Int, _ days: Int) throws {
                serial += 1
                try db.execute(sql: "INSERT INTO rental (request_id, state, unit_id, start_day, end_day, status, updated_at) VALUES (?, ?, ?, ?, ?, '{}', 0)",
                               arguments: ["pre\(serial)", state, unit, start, start + days])
            }
            for unit in units {
                var day = Self.origin.daysSinceEpoch + Int.random(in: -30...30, using: &random)
                for _ in 0..<Int.random(in: 0...8, using: &random) {
                    day += Int.random(in: 0...15, using: &random)
                    let days = Int.random(in: 1...40, using: &random)
                    try insert(unit.id, "assigned", day, days)
                    day += days
                }
                for state in ["cancelled", "rejected", "completed"] where Int.random(in: 0..<2, using: &random) == 0 {
                    try insert(unit.id, state, Self.origin.daysSinceEpoch + Int.random(in: -20...150, using: &random), Int.random(in: 1...60, using: &random))
                }
            }
        }
    }

    /// The independent count: in-service units of `size` at `site` with no assigned rental
    /// overlapping `period`, in plain SQL over the raw rows (no index, no invariant assumed).
    static func referenceFree(_ db: Database, size: String, site: String, period: RentalPeriod) throws -> Int {
        try Int.fetchOne(db, sql: """
            SELECT count(*) FROM unit u WHERE u.size = ? AND u.site = ? AND u.in_service = 1
              AND NOT EXISTS (SELECT 1 FROM rental r WHERE r.unit_id = u.id AND r.state = 'assigned'
                                AND r.start_day < ? AND r.end_day > ?)
            """, arguments: [size, site, period.end.daysSinceEpoch, period.start.daysSinceEpoch]) ?? -1
    }

    /// The reference earliest start (``BestFit``, over every holding) among the site's units.
    static func referenceEarliest(_ store: AllocatorStore, size: String, site: String, period: RentalPeriod) throws -> CalendarDay? {
        let held = Dictionary(grouping: try store.assignments(), by: \.unit)
        let candidates = try store.units().filter { $0.size == size && $0.site == site && $0.inService }
            .map { BestFit.Candidate(unit: $0, holdings: held[$0.id]?.map(\.period) ?? []) }
        return BestFit.earliestStart(for: period, among: candidates, horizonDays: AvailabilityQuery.horizonDays)
    }

    /// Property: on random stores, read through a ``StoreReader``, every site's units in
    /// service, free count and earliest start (when none is free) equal the independent count
    /// and the reference algorithm; the overall earliest start is the earliest of the sites'.
    @Test(arguments: 0..<25)
    func answersEqualAnIndependentCount(seed: Int) throws {
        var random = SeededGenerator(seed: UInt64(seed) &* 6_113 &+ 17)
        let (_, spool) = try makeSpool()
        let store = try AllocatorStore(spool: spool)
        try fillRandomly(store, &random)
        let reader = try StoreReader(spool: spool)
        #expect(reader.storeExists && reader.schemaAtLeastV4)
        for _ in 0..<12 {
            let start = Self.origin.adding(days: Int.random(in: -40...200, using: &random))
            let period = RentalPeriod(start: start, end: start.adding(days: Int.random(in: 1...60, using: &random)))!
            for size in ["S", "M", "L", "XL"] {
                let site = [nil, "main", "north"].randomElement(using: &random)!
                let answer = try reader.read { db in try AvailabilityQuery.answer(size: size, period: period, site: site, currency: nil, db) }
                let units = try store.units().filter { $0.size == size && $0.inService && (site == nil || $0.site == site) }
                var expectedSites = Set(units.map(\.site))
                if let site { expectedSites.insert(site) }
                #expect(answer.map(\.site) == expectedSites.sorted(), "sites for \(size) at \(site ?? "any")")
                for line in answer {
                    let reference = try store.read { db in try Self.referenceFree(db, size: size, site: line.site, period: period) }
                    #expect(line.unitsInService == units.filter { $0.site == line.site }.count)
                    #expect(line.free == reference, "free \(size) at \(line.site) for \(period)")
                    let earliest = line.free > 0 ? nil : try Self.referenceEarliest(store, size: size, site: line.site, period: period)
                    #expect(line.earliestStart == earliest, "earliest \(size) at \(line.site) for \(period)")
                    #expect(line.price == nil)
                }
                let overall = answer.allSatisfy { $0.free == 0 } ? answer.compactMap(\.earliestStart).min() : nil
                #expect(AvailabilityQuery.earliestStart(answer) == overall)
                if site == nil, overall != nil {
                    #expect(try store.read { db in try Availability.earliestStart(size: size, period: period, db) } == overall)
                }
            }
        }
    }

    /// No store yet (the allocator never ran): empty answers, not an error, and nothing is
    /// created (not even `allocator/`).
    @Test func noStoreAnswersEmptyAndCreatesNothing() throws {
        let (directory, spool) = try makeSpool()
        let reader = try StoreReader(spool: spool)
        #expect(!reader.storeExists)
        let period = RentalPeriod(start: Self.origin, end: Self.origin.adding(days: 30))!
        let (answer, sites) = try reader.read { db in
            (try AvailabilityQuery.answer(size: "M", period: period, site: nil, currency: "EUR", db), try AvailabilityQuery.sites(db))
        }
        #expect(answer.isEmpty && sites.isEmpty)
        #expect(try reader.read { db in try AvailabilityQuery.answer(size: "M", period: period, site: "main", currency: nil, db) }
                == [SiteAvailability(site: "main", unitsInService: 0, free: 0)])
        #expect(!FileManager.default.fileExists(atPath: directory.sub("spool/allocator")))
    }

    /// A store still at schema v3 (the allocator not restarted since the upgrade): read as it
    /// is, never migrated (no file changes), `schemaAtLeastV4` false, answers without prices.
    @Test func aVersion3StoreIsReadWithoutMigrating() throws {
        let (_, spool) = try makeSpool()
        let path = try spool.directoryPath("allocator") + "/state.sqlite"
        do {
            let old = try DatabaseQueue(path: path)
            try old.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
            try AllocatorStore.migrator.migrate(old, upTo: "v3-finished-index")
            try old.write { db in
                try db.execute(sql: "INSERT INTO unit (id, size, site, in_service, added_at) VALUES ('A', 'M', 'main', 1, 0), ('B', 'M', 'main', 1, 0)")
                try db.execute(sql: "INSERT INTO rental (request_id, state, unit_id, start_day, end_day, status, updated_at) VALUES ('r', 'assigned', 'A', ?, ?, '{}', 0)",
                               arguments: [Self.origin.daysSinceEpoch, Self.origin.adding(days: 10).daysSinceEpoch])
            }
            try old.close()
        }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let reader = try StoreReader(spool: spool)
        #expect(reader.storeExists && !reader.schemaAtLeastV4)
        let period = RentalPeriod(start: Self.origin, end: Self.origin.adding(days: 5))!
        #expect(try reader.read { db in try AvailabilityQuery.answer(size: "M", period: period, site: nil, currency: nil, db) }
                == [SiteAvailability(site: "main", unitsInService: 2, free: 1)])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "the reader changed the store")
        let migrations = try DatabaseQueue(path: path).read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
        #expect(migrations == ["v1", "v2-holdings-index", "v3-finished-index"])
    }

    /// A store file that is not a store (zero-length, or random bytes) is damage (exit 65 in
    /// `spoolctl`), never an empty inventory and never an SQL error (a zero-length file read as
    /// an empty database failed with "no such table: unit", exit 74).
    @Test func aFileThatIsNotAStoreIsDamage() throws {
        for content in [Data(), Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })] {
            let (_, spool) = try makeSpool()
            let path = try spool.directoryPath("allocator") + "/state.sqlite"
            try content.write(to: URL(fileURLWithPath: path))
            var damage = false
            do { _ = try StoreReader(spool: spool) } catch { damage = DatabaseDamage.isDamage(error) }
            #expect(damage, "\(content.count) bytes")
        }
    }

    /// A reader cannot write (read-only connection, `query_only`), even through its `Database`.
    @Test func aReaderCannotWrite() throws {
        let (_, spool) = try makeSpool()
        let store = try AllocatorStore(spool: spool)
        try store.addUnits([StorageUnit(id: "A", size: "M", site: "main")], sizes: SizeClass.defaults)
        let reader = try StoreReader(spool: spool)
        #expect(throws: DatabaseError.self) {
            try reader.read { db in try db.execute(sql: "UPDATE unit SET in_service = 0") }
        }
        #expect(try store.units().map(\.inService) == [true])
    }

    /// A reader held inside its read transaction blocks nothing: the allocator decides and
    /// commits meanwhile, and the reader keeps its snapshot (it does not see the new rental
    /// until its next read).
    @Test func aHeldReaderBlocksNoDecision() throws {
        let (_, spool) = try makeSpool()
        let service = try AllocationService(spool: spool, configuration: SystemConfiguration(), logger: Logger(label: "test"))
        try service.store.addUnits([StorageUnit(id: "A", size: "M", site: "main"), StorageUnit(id: "B", size: "M", site: "main")],
                                   sizes: SizeClass.defaults)
        let reader = try StoreReader(spool: spool)
        let period = RentalPeriod(start: Self.origin, end: Self.origin.adding(days: 30))!
        let inside = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let counts = Handoff<[Int]>()
        let thread = Thread {
            counts.set(try? reader.read { db in
                let first = try Availability.freeUnitCount(size: "M", period: period, site: "main", db)
                inside.signal()
                release.wait()
                return [first, try Availability.freeUnitCount(size: "M", period: period, site: "main", db)]
            })
        }
        thread.start()
        inside.wait()
        let request = RentalRequest(id: "r1", customer: "c", contact: "c@example.com", size: "M", period: period,
                                    submittedBy: 0, submittedByName: "root", createdAt: 0)
        #expect(try service.decide(.allocate(request)) == .assigned(unit: "A"), "decided while a reader is inside its transaction")
        release.signal()
        #expect(counts.wait() == [2, 2], "the held reader keeps its snapshot")
        #expect(try reader.read { db in try Availability.freeUnitCount(size: "M", period: period, site: "main", db) } == 1)
    }

    /// A read that runs past the time limit is stopped by the progress handler: ``StoreReader/TimedOut``, not a hang.
    @Test func aLongReadIsStoppedAtTheTimeLimit() throws {
        let (_, spool) = try makeSpool()
        _ = try AllocatorStore(spool: spool)
        let reader = try StoreReader(spool: spool)
        #expect(throws: StoreReader.TimedOut.self) {
            try reader.read { db in
                try Int.fetchOne(db, sql: "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n")
            }
        }
        #expect(try reader.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM unit") } == 0, "the next read works")
    }

    /// A connection holding the store exclusively (`locking_mode = EXCLUSIVE`; a WAL reader
    /// otherwise waits only while another process recovers the WAL index) makes a reader give
    /// up at its time limit (exit 75), not after the spool's 30 s busy timeout, and not never.
    @Test func aReaderGivesUpOnAnExclusiveLockAtTheTimeLimit() throws {
        let (_, spool) = try makeSpool()
        let path: String
        do {
            let store = try AllocatorStore(spool: spool)
            try store.addUnits([StorageUnit(id: "A", size: "M", site: "main")], sizes: SizeClass.defaults)
            path = store.path
        }
        let holder = try DatabaseQueue(path: path)
        try holder.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA locking_mode = EXCLUSIVE")
            try db.execute(sql: "UPDATE unit SET added_at = 1")
        }
        let started = ContinuousClock.now
        #expect(throws: StoreReader.TimedOut.self) {
            let reader = try StoreReader(spool: spool)
            _ = try reader.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM unit") }
        }
        #expect(ContinuousClock.now - started < .seconds(25), "waited for the spool's busy timeout instead of the reader's limit")
        try holder.close()
        #expect(try StoreReader(spool: spool).read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM unit") } == 1)
    }
}
