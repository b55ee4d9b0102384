import Foundation
import GRDB
import Rentals
import Testing
@testable import Allocator
@testable import Spool
@testable import spoolctl

/// ``OccupancyQuery`` (`spoolctl occupancy`) against an independent count, and its edges.
@Suite struct OccupancyTests {
    private static let origin = CalendarDay(iso: "2099-01-01")!.daysSinceEpoch
    private static let sites = ["main", "north", "a,b \"quoted\"", "=HYPERLINK(1)"]

    /// The raw rows of a random store, as the test inserted them.
    private struct World {
        var units: [(id: String, size: String, site: String, inService: Bool)] = []
        var rentals: [(unit: String?, state: String, start: Int, end: Int)] = []
        var waiting: [(size: String, site: String?, start: Int, end: Int)] = []
    }

    /// A random store written with raw SQL: units of three sizes at up to four sites (some out of
    /// service, some of them still holding rentals), each holding non-overlapping assigned
    /// rentals (some ended before `today` and not yet completed), cancelled, completed and
    /// rejected rentals anywhere, and waitlisted requests for a site, any site or a site
    /// without units.
    private func fill(_ store: AllocatorStore, _ random: inout SeededGenerator) throws -> World {
        var world = World()
        let siteCount = Int.random(in: 1...Self.sites.count, using: &random)
        for site in Self.sites.prefix(siteCount) {
            for size in ["S", "M", "L"] {
                for index in 0..<Int.random(in: 0...4, using: &random) {
                    world.units.append(("\(size)\(index)-\(world.units.count)", size, site, Int.random(in: 0..<5, using: &random) != 0))
                }
            }
        }
        try store.write { db in
            var serial = 0
            func rental(_ unit: String?, _ state: String, _ start: Int, _ end: Int) throws -> String {
                serial += 1
                try db.execute(sql: """
                    INSERT INTO rental (request_id, state, unit_id, start_day, end_day, status, updated_at) VALUES (?, ?, ?, ?, ?, '{}', 0)
                    """, arguments: ["r\(serial)", state, unit, start, end])
                world.rentals.append((unit, state, start, end))
                return "r\(serial)"
            }
            for unit in world.units {
                try db.execute(sql: "INSERT INTO unit (id, size, site, in_service, added_at) VALUES (?, ?, ?, ?, 0)",
                               arguments: [unit.id, unit.size, unit.site, unit.inService])
                var day = Self.origin + Int.random(in: -60...20, using: &random)
                for _ in 0..<Int.random(in: 0...8, using: &random) {
                    day += Int.random(in: 0...15, using: &random)
                    let days = Int.random(in: 1...40, using: &random)
                    _ = try rental(unit.id, "assigned", day, day + days)
                    day += days
                }
                for state in ["cancelled", "completed", "rejected"] where Bool.random(using: &random) {
                    let start = Self.origin + Int.random(in: -60...200, using: &random)
                    _ = try rental(state == "rejected" ? nil : unit.id, state, start, start + Int.random(in: 1...90, using: &random))
                }
            }
            for _ in 0..<Int.random(in: 0...12, using: &random) {
                let size = ["S", "M", "L"].randomElement(using: &random)!
                let site: String? = [nil, Self.sites[0], Self.sites[2], "ghost"].randomElement(using: &random)!
                let start = Self.origin + Int.random(in: -30...150, using: &random), end = start + Int.random(in: 1...90, using: &random)
                let id = try rental(nil, "waitlisted", start, end)
                try db.execute(sql: "INSERT INTO waitlist (request_id, size, site, start_day, end_day, since) VALUES (?, ?, ?, ?, ?, 0)",
                               arguments: [id, size, site, start, end])
                world.waiting.append((size, site, start, end))
            }
        }
        return world
    }

    private func randomPeriod(_ random: inout SeededGenerator) -> RentalPeriod {
        let start = Self.origin + Int.random(in: -90...200, using: &random)
        let days: Int
        switch Int.random(in: 0..<6, using: &random) {
        case 0, 1: days = 1
        case 2: days = 3653  // ten years
        default: days = Int.random(in: 2...120, using: &random)
        }
        return RentalPeriod(start: CalendarDay(daysSinceEpoch: start), end: CalendarDay(daysSinceEpoch: start + days))!
    }

    /// Percent with one decimal, half up, by quotient and remainder (not the query's formula).
    private func expectedPercent(_ rented: Int, _ inService: Int) -> String? {
        guard inService > 0 else { return nil }
        var tenths = rented * 1000 / inService
        if 2 * (rented * 1000 % inService) >= inService { tenths += 1 }
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// The expected rows by walking every day of the period for every unit and waiting request
    /// over the raw rows: no SQL, no interval arithmetic.
    private func expectedRows(_ world: World, period: RentalPeriod, today: Int, site: String?) -> [String: OccupancyRow] {
        let days = Array(period.start.daysSinceEpoch..<period.end.daysSinceEpoch)
        let holdings = Dictionary(grouping: world.rentals.filter { $0.state == "assigned" }, by: { $0.unit ?? "" })
        struct Sum { var inService = 0, held = 0, unitDays = 0, retiredDays = 0, waitlisted = 0 }
        var sums: [String: [String: Sum]] = [:]  // site -> size -> sum; site "" = any site
        for unit in world.units where site == nil || unit.site == site {
            var rentedDays = 0
            for day in days where holdings[unit.id, default: []].contains(where: { $0.start <= day && day < $0.end }) { rentedDays += 1 }
            var sum = sums[unit.site, default: [:]][unit.size, default: Sum()]
            if unit.inService {
                sum.inService += 1
                sum.unitDays += rentedDays
                if rentedDays > 0 { sum.held += 1 }
            } else {
                sum.retiredDays += rentedDays
            }
            sums[unit.site, default: [:]][unit.size] = sum
        }
        for request in world.waiting where request.start > today && (site == nil || request.site == nil || request.site == site) {
            guard days.contains(where: { request.start <= $0 && $0 < request.end }) else { continue }
            sums[request.site ?? "", default: [:]][request.size, default: Sum()].waitlisted += 1
        }
        func row(_ site: String, _ size: String, _ sum: Sum, _ kind: OccupancyRow.Kind) -> OccupancyRow {
            OccupancyRow(site: site, size: size, unitsInService: sum.inService, rented: sum.unitDays / days.count,
                         free: sum.inService - sum.held, waitlisted: sum.waitlisted, rentedOutOfService: sum.retiredDays / days.count,
                         occupancyPercent: expectedPercent(sum.unitDays, sum.inService * days.count), kind: kind)
        }
        func add(_ a: Sum, _ b: Sum) -> Sum {
            Sum(inService: a.inService + b.inService, held: a.held + b.held, unitDays: a.unitDays + b.unitDays,
                retiredDays: a.retiredDays + b.retiredDays, waitlisted: a.waitlisted + b.waitlisted)
        }
        var rows: [String: OccupancyRow] = [:]
        var grand = Sum()
        for (name, sizes) in sums {
            var total = Sum()
            for (size, sum) in sizes {
                rows[name.isEmpty ? "any|\(size)" : "size|\(name)|\(size)"] = row(name.isEmpty ? "*" : name, size, sum, name.isEmpty ? .anySite : .size)
                total = add(total, sum)
            }
            if !name.isEmpty { rows["site|\(name)"] = row(name, "*", total, .site) }
            grand = add(grand, total)
        }
        if site == nil { rows["total"] = row("*", "*", grand, .total) }
        return rows
    }

    private func key(_ row: OccupancyRow) -> String {
        switch row.kind {
        case .size: return "size|\(row.site)|\(row.size)"
        case .site: return "site|\(row.site)"
        case .anySite: return "any|\(row.size)"
        case .total: return "total"
        }
    }

    /// Property (issue 11 acceptance): on random stores, for days and ranges (one of ten years
    /// among them), with and without a site, every row equals the independent count, and the
    /// rows come in the documented order.
    @Test(arguments: 0..<25)
    func occupancyEqualsAnIndependentCountOverTheStore(seed: Int) throws {
        var random = SeededGenerator(seed: UInt64(seed) &* 104_729 &+ 11)
        let (directory, spool) = try makeSpool()
        defer { _ = directory }
        let store = try AllocatorStore(spool: spool)
        let world = try fill(store, &random)
        let reader = try StoreReader(spool: spool)
        for _ in 0..<6 {
            let period = randomPeriod(&random)
            let today = Self.origin + Int.random(in: -40...100, using: &random)
            let site: String? = Bool.random(using: &random) ? nil : (Self.sites + ["ghost"]).randomElement(using: &random)!
            let rows = try reader.read { db in
                try OccupancyQuery.rows(site: site, period: period, today: CalendarDay(daysSinceEpoch: today), sizeOrder: ["S", "M", "L"], db)
            }
            let expected = expectedRows(world, period: period, today: today, site: site)
            #expect(Dictionary(rows.map { (key($0), $0) }, uniquingKeysWith: { a, _ in a }) == expected,
                    "seed \(seed), \(period), today \(today), site \(site ?? "-")")
            #expect(rows.count == expected.count)
            // Order: sites by name, each with its sizes S, M, L then its total; any site; the total.
            let siteOrder = rows.filter { $0.kind == .site }.map(\.site)
            #expect(siteOrder == siteOrder.sorted())
            for name in siteOrder {
                let own = rows.filter { $0.site == name && ($0.kind == .size || $0.kind == .site) }
                #expect(own.last?.kind == .site)
                let sizes = own.filter { $0.kind == .size }.map(\.size)
                #expect(sizes == ["S", "M", "L"].filter(sizes.contains))
            }
            if site == nil { #expect(rows.last?.kind == .total) }
        }
    }

    @Test func percentIsExactWithOneDecimalRoundedHalfUp() {
        #expect(OccupancyQuery.percent(1, of: 3) == "33.3")
        #expect(OccupancyQuery.percent(2, of: 3) == "66.7")
        #expect(OccupancyQuery.percent(1, of: 8) == "12.5")
        #expect(OccupancyQuery.percent(1, of: 16) == "6.3")   // 6.25 up
        #expect(OccupancyQuery.percent(1, of: 2000) == "0.1")  // 0.05 up
        #expect(OccupancyQuery.percent(1, of: 2001) == "0.0")
        #expect(OccupancyQuery.percent(0, of: 5) == "0.0")
        #expect(OccupancyQuery.percent(5, of: 5) == "100.0")
        #expect(OccupancyQuery.percent(0, of: 0) == nil)
        // A range of the whole calendar over a thousand units stays exact.
        let unitDays = 1000 * 3_652_059
        #expect(OccupancyQuery.percent(unitDays - 1, of: unitDays) == "100.0")
    }

    /// A store the allocator has not migrated to v4 yet (it was not restarted after the
    /// upgrade): read-only, nothing is migrated, there is no waiting list, and the answer is
    /// whole with waitlisted 0.
    @Test func aStoreAtVersion3AnswersWithoutWaitlistAndIsNotMigrated() throws {
        let (directory, spool) = try makeSpool()
        defer { _ = directory }
        let path = try spool.directoryPath("allocator") + "/state.sqlite"
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
        try AllocatorStore.migrator.migrate(queue, upTo: "v3-finished-index")
        try queue.write { db in
            try db.execute(sql: "INSERT INTO unit (id, size, site, in_service, added_at) VALUES ('A', 'M', 'main', 1, 0), ('B', 'M', 'main', 1, 0)")
            try db.execute(sql: "INSERT INTO rental (request_id, state, unit_id, start_day, end_day, status, updated_at) VALUES ('r1', 'assigned', 'A', ?, ?, '{}', 0)",
                           arguments: [Self.origin, Self.origin + 30])
        }
        try queue.close()
        let reader = try StoreReader(spool: spool)
        #expect(!reader.schemaAtLeastV4)
        let day = CalendarDay(daysSinceEpoch: Self.origin + 3)
        let rows = try reader.read { db in
            try OccupancyQuery.rows(site: nil, period: RentalPeriod(start: day, end: day.adding(days: 1))!,
                                    today: CalendarDay(daysSinceEpoch: Self.origin - 10), db)
        }
        #expect(rows.first == OccupancyRow(site: "main", size: "M", unitsInService: 2, rented: 1, free: 1, waitlisted: 0,
                                           rentedOutOfService: 0, occupancyPercent: "50.0"))
        #expect(rows.last?.kind == .total && rows.last?.occupancyPercent == "50.0")
        let migrations = try DatabaseQueue(path: path).read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
        #expect(migrations.last == "v3-finished-index", "read-only opening must not migrate: \(migrations)")
    }

    /// A unit whose stored rentals overlap (damage the triggers refuse, written before them)
    /// is reported, never counted twice.
    @Test func overlappingHoldingsAreDamageNotDoubleCounting() throws {
        let (directory, spool) = try makeSpool()
        defer { _ = directory }
        let store = try AllocatorStore(spool: spool)
        try store.write { db in
            try db.execute(sql: "DROP TRIGGER rental_no_overlap_insert")
            try db.execute(sql: "INSERT INTO unit (id, size, site, in_service, added_at) VALUES ('A', 'M', 'main', 1, 0)")
            for (id, start) in [("r1", Self.origin), ("r2", Self.origin + 5)] {
                try db.execute(sql: "INSERT INTO rental (request_id, state, unit_id, start_day, end_day, status, updated_at) VALUES (?, 'assigned', 'A', ?, ?, '{}', 0)",
                               arguments: [id, start, start + 20])
            }
        }
        let period = RentalPeriod(start: CalendarDay(daysSinceEpoch: Self.origin), end: CalendarDay(daysSinceEpoch: Self.origin + 10))!
        #expect(throws: StoredContentDamage.self) {
            try StoreReader(spool: spool).read { db in try OccupancyQuery.rows(site: nil, period: period, today: period.start, db) }
        }
    }

    /// The figures come from aggregate queries that seek the holdings index per unit, never a
    /// scan of the rental table.
    @Test func theQuerySeeksTheHoldingsIndex() throws {
        let (directory, spool) = try makeSpool()
        defer { _ = directory }
        let store = try AllocatorStore(spool: spool)
        let plan = try store.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + OccupancyQuery.unitsSQL, arguments: ["start": 1, "end": 2, "site": nil])
                .map { try $0.decode(String.self, forColumn: "detail") }
        }
        #expect(plan.contains { $0.contains("rental_span") }, "\(plan)")
        #expect(!plan.contains { $0.hasPrefix("SCAN r") }, "\(plan)")
    }

    @Test func csvQuotesAndNeutralizesNames() {
        #expect(OccupancyCSV.field("main") == "main")
        #expect(OccupancyCSV.field("a,b") == "\"a,b\"")
        #expect(OccupancyCSV.field("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(OccupancyCSV.field("=1+1") == "'=1+1")
        #expect(OccupancyCSV.field("+1") == "'+1")
        #expect(OccupancyCSV.field("-1") == "'-1")
        #expect(OccupancyCSV.field("@SUM(A1)") == "'@SUM(A1)")
        #expect(OccupancyCSV.field("=a,\"b\"") == "\"'=a,\"\"b\"\"\"")
        #expect(OccupancyCSV.field("line\nbreak") == "\"line\nbreak\"")
        let text = OccupancyCSV.render([OccupancyRow(site: "x", size: "M", unitsInService: 0, rented: 0, free: 0, waitlisted: 2,
                                                     rentedOutOfService: 0, occupancyPercent: nil)])
        #expect(text == "site,size,units_in_service,rented,free,waitlisted,occupancy_percent\r\nx,M,0,0,0,2,\r\n")
        // A real site named `*` is not the marker of the any-site and total rows.
        let star = OccupancyCSV.render([
            OccupancyRow(site: "*", size: "M", unitsInService: 1, rented: 1, free: 0, waitlisted: 0, rentedOutOfService: 0, occupancyPercent: "100.0"),
            OccupancyRow(site: "*", size: "*", unitsInService: 1, rented: 1, free: 0, waitlisted: 0, rentedOutOfService: 0, occupancyPercent: "100.0", kind: .site),
            OccupancyRow(site: "*", size: "M", unitsInService: 0, rented: 0, free: 0, waitlisted: 3, rentedOutOfService: 0, occupancyPercent: nil, kind: .anySite),
            OccupancyRow(site: "*", size: "*", unitsInService: 1, rented: 1, free: 0, waitlisted: 3, rentedOutOfService: 0, occupancyPercent: "100.0", kind: .total),
        ]).split(separator: "\r\n").dropFirst()
        #expect(star == ["'*,M,1,1,0,0,100.0", "'*,*,1,1,0,0,100.0", "*,M,0,0,0,3,", "*,*,1,1,0,3,100.0"])
    }

    @Test func namesCannotDriveTheTerminal() {
        #expect(Occupancy.displayed("main") == "main")
        #expect(Occupancy.displayed("a\u{1B}[2Jb") == "a\\u{1B}[2Jb")
        #expect(Occupancy.displayed("x\u{202E}y") == "x\\u{202E}y")
    }
}
