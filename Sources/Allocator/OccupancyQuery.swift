import GRDB
import Rentals
import Spool

/// One line of `spoolctl occupancy`: a site and size, a site's total, the demand waiting for
/// any site, or the grand total.
///
/// JSON keys are snake_case (`units_in_service`, `rented_out_of_service`,
/// `occupancy_percent`); `occupancy_percent` is always present, `null` when no unit is in service.
public struct OccupancyRow: Codable, Sendable, Equatable {
    /// What a row sums up.
    public enum Kind: String, Codable, Sendable {
        /// One size at one site.
        case size
        /// Every size at one site (`size` is `*`).
        case site
        /// Waitlisted requests that take any site (`site` is `*`): demand only, no units.
        case anySite = "any_site"
        /// Every site and size (`site` and `size` are `*`).
        case total
    }

    /// The site, or `*` for the any-site and grand total rows.
    public var site: String
    /// The size class, or `*` for the total rows.
    public var size: String
    /// Units of the row in service now.
    public var unitsInService: Int
    /// In-service units rented: on a day, those holding an assigned rental covering it; over a
    /// range, the unit-days rented divided by the days (rounded down).
    public var rented: Int
    /// In-service units free for the whole day or range.
    public var free: Int
    /// Waitlisted requests whose period covers the day or overlaps the range.
    public var waitlisted: Int
    /// Units out of service (retired) still holding rentals in the day or range, counted as
    /// ``rented`` is; not part of any other column.
    public var rentedOutOfService: Int
    /// Rented unit-days per hundred unit-days in service, one decimal, rounded half up
    /// (`"83.3"`); nil when no unit is in service.
    public var occupancyPercent: String?
    /// What the row sums up.
    public var kind: Kind

    /// A row.
    public init(site: String, size: String, unitsInService: Int, rented: Int, free: Int, waitlisted: Int,
                rentedOutOfService: Int, occupancyPercent: String?, kind: Kind = .size) {
        self.site = site
        self.size = size
        self.unitsInService = unitsInService
        self.rented = rented
        self.free = free
        self.waitlisted = waitlisted
        self.rentedOutOfService = rentedOutOfService
        self.occupancyPercent = occupancyPercent
        self.kind = kind
    }

    enum CodingKeys: String, CodingKey {
        case site, size, rented, free, waitlisted, kind
        case unitsInService = "units_in_service"
        case rentedOutOfService = "rented_out_of_service"
        case occupancyPercent = "occupancy_percent"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(site, forKey: .site)
        try container.encode(size, forKey: .size)
        try container.encode(unitsInService, forKey: .unitsInService)
        try container.encode(rented, forKey: .rented)
        try container.encode(free, forKey: .free)
        try container.encode(waitlisted, forKey: .waitlisted)
        try container.encode(rentedOutOfService, forKey: .rentedOutOfService)
        try container.encode(occupancyPercent, forKey: .occupancyPercent)  // null, not omitted
        try container.encode(kind, forKey: .kind)
    }
}

/// Occupancy per site and size over the allocator's store, for a day (`[D, D+1)`) or a range of
/// days, in one read transaction of the caller's.
///
/// **Definitions** (the test `occupancyEqualsAnIndependentCountOverTheStore` counts the same
/// by iterating days and units over the raw rows):
/// - units in service: the units with `in_service = 1` now (the store keeps no history of a
///   unit's service, so a retired unit is out of service for every day asked);
/// - unit-days rented: per in-service unit, the days of the period covered by its assigned
///   rentals (state `assigned`: current and future bookings; completed, cancelled and
///   rejected rentals are not holdings, so a day in the past counts only the rentals still
///   held: the store keeps no occupancy history);
/// - rented = unit-days rented ÷ days of the period, rounded down (on one day: the units
///   holding a rental that day); free = in-service units with no assigned rental overlapping
///   the period; percent = unit-days rented × 100 ÷ (units in service × days), in integers;
/// - waitlisted: rows of `waitlist` whose period overlaps the period and that can still be
///   served (`start_day > today`; one whose start has come is expired, or will be at the
///   allocator's next daily pass); a request for any site counts in the `*` row of its size;
///   0 on a store not yet migrated to v4 (no `waitlist` table; nothing is migrated here).
///
/// **Cost**: two aggregate queries. The first reads the units (one pass over `unit`) and, per
/// unit, seeks the partial covering index `rental_span` (`unit_id, start_day, end_day` of
/// assigned rentals) twice: for the holding covering the period's start, then for the holdings
/// from it to the period's end. So it reads `units + holdings overlapping the period` index
/// entries (a day: at most two per unit; ten years: every holding of those years), never the
/// history, and nothing is loaded into Swift per rental. The second reads the waiting list's entries with `start_day > today`
/// (index `waitlist_start`). The totals are summed in Swift over the groups (sites × sizes).
public enum OccupancyQuery {
    /// The rows for `period` (`site`: only that site's rows and the any-site demand; nil: every
    /// site and the grand total), sizes in `sizeOrder` order (the configured classes; others
    /// after them by name), sites by name, the any-site rows and the grand total last.
    ///
    /// - Throws: ``StoredContentDamage`` for a stored day or count that is not an integer, or a
    ///   unit holding more rented days than the period has (overlapping assignments); GRDB errors.
    public static func rows(site: String?, period: RentalPeriod, today: CalendarDay, sizeOrder: [String] = [],
                            _ db: Database) throws -> [OccupancyRow] {
        let groups = try unitGroups(site: site, period: period, db)
        let waiting = try waitlisted(site: site, period: period, today: today, db)
        var keys = Set(groups.keys)
        for key in waiting.keys where key.site != nil { keys.insert(Key(site: key.site, size: key.size)) }
        let order = Dictionary(sizeOrder.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        func sizeBefore(_ a: String, _ b: String) -> Bool {
            let (x, y) = (order[a] ?? Int.max, order[b] ?? Int.max)
            return x != y ? x < y : a < b
        }
        let days = period.days
        var rows: [OccupancyRow] = []
        var grand = Tally()
        for name in Set(keys.compactMap(\.site)).sorted() {
            var siteTally = Tally()
            for size in keys.filter({ $0.site == name }).map(\.size).sorted(by: sizeBefore) {
                var tally = groups[Key(site: name, size: size)] ?? Tally()
                tally.waitlisted = waiting[Key(site: name, size: size)] ?? 0
                rows.append(tally.row(site: name, size: size, days: days, kind: .size))
                siteTally.add(tally)
            }
            rows.append(siteTally.row(site: name, size: "*", days: days, kind: .site))
            grand.add(siteTally)
        }
        for size in waiting.keys.filter({ $0.site == nil }).map(\.size).sorted(by: sizeBefore) {
            var tally = Tally()
            tally.waitlisted = waiting[Key(site: nil, size: size)] ?? 0
            rows.append(tally.row(site: "*", size: size, days: days, kind: .anySite))
            grand.add(tally)
        }
        if site == nil { rows.append(grand.row(site: "*", size: "*", days: days, kind: .total)) }
        return rows
    }

    /// `rented` units of `inService`, in percent with one decimal, rounded half up, computed in
    /// integers (`(rented × 1000 + inService / 2) / inService` tenths); nil when `inService` is 0.
    /// Exact for any count a store can hold (`rented × 1000` stays far below 2^63 for up to
    /// 10^9 unit-days).
    public static func percent(_ rented: Int, of inService: Int) -> String? {
        guard inService > 0 else { return nil }
        let tenths = (rented * 1000 + inService / 2) / inService
        return "\(tenths / 10).\(tenths % 10)"
    }

    struct Key: Hashable {
        var site: String?
        var size: String
    }

    /// Sums of a group of units (unit-days, not yet divided by the period's days).
    struct Tally {
        var units = 0, held = 0, unitDays = 0, retiredUnitDays = 0, waitlisted = 0

        mutating func add(_ other: Tally) {
            units += other.units
            held += other.held
            unitDays += other.unitDays
            retiredUnitDays += other.retiredUnitDays
            waitlisted += other.waitlisted
        }

        func row(site: String, size: String, days: Int, kind: OccupancyRow.Kind) -> OccupancyRow {
            OccupancyRow(site: site, size: size, unitsInService: units, rented: unitDays / days, free: units - held,
                         waitlisted: waitlisted, rentedOutOfService: retiredUnitDays / days,
                         occupancyPercent: OccupancyQuery.percent(unitDays, of: units * days), kind: kind)
        }
    }

    /// Per unit: the days of `period` its assigned rentals cover, read from the holding covering
    /// the period's start (the latest starting at or before it: under the store's invariant that
    /// a unit's assigned rentals never overlap, no earlier one can reach into the period) up to
    /// the period's end, two seeks in `rental_span` (materialized: the outer aggregates would
    /// otherwise repeat the subquery once per use of `days`); then
    /// per site, size and service state: units, units holding any of those days, unit-days, and
    /// the most days one unit holds (more than the period has: overlapping assignments).
    static let unitsSQL = """
        WITH per_unit AS MATERIALIZED (
            SELECT u.site AS site, u.size AS size, u.in_service = 1 AS in_service,
              IFNULL((SELECT SUM(MIN(r.end_day, :end) - MAX(r.start_day, :start)) FROM rental r
                      WHERE r.state = 'assigned' AND r.unit_id = u.id AND r.start_day < :end AND r.end_day > :start
                        AND r.start_day >= IFNULL((SELECT MAX(p.start_day) FROM rental p
                                                   WHERE p.state = 'assigned' AND p.unit_id = u.id AND p.start_day <= :start), :start)), 0) AS days
            FROM unit u WHERE :site IS NULL OR u.site = :site)
        SELECT site, size, in_service, COUNT(*), SUM(days > 0), SUM(days), MAX(days)
        FROM per_unit GROUP BY site, size, in_service
        """

    static func unitGroups(site: String?, period: RentalPeriod, _ db: Database) throws -> [Key: Tally] {
        var groups: [Key: Tally] = [:]
        let rows = try Row.fetchCursor(db, sql: unitsSQL, arguments: ["start": period.start.daysSinceEpoch,
                                                                      "end": period.end.daysSinceEpoch, "site": site])
        while let row = try rows.next() {
            let key = Key(site: try row.decode(String.self, atIndex: 0), size: try row.decode(String.self, atIndex: 1))
            let inService = try count(row, 2) == 1
            let units = try count(row, 3), held = try count(row, 4), unitDays = try count(row, 5), most = try count(row, 6)
            guard most <= period.days, unitDays >= 0 else {
                throw StoredContentDamage("a unit at site \(key.site ?? "") holds \(most) rented days in a period of \(period.days): the store's assignments overlap")
            }
            var tally = groups[key] ?? Tally()
            if inService {
                tally.units += units
                tally.held += held
                tally.unitDays += unitDays
            } else {
                tally.retiredUnitDays += unitDays
            }
            groups[key] = tally
        }
        return groups
    }

    /// Waitlisted requests per site (nil: any site) and size whose period overlaps `period` and
    /// starts after `today`; none on a store without the `waitlist` table (before v4).
    static func waitlisted(site: String?, period: RentalPeriod, today: CalendarDay, _ db: Database) throws -> [Key: Int] {
        guard try db.tableExists("waitlist") else { return [:] }
        var counts: [Key: Int] = [:]
        let rows = try Row.fetchCursor(db, sql: """
            SELECT site, size, COUNT(*) FROM waitlist
            WHERE start_day > :today AND start_day < :end AND end_day > :start AND (:site IS NULL OR site IS NULL OR site = :site)
            GROUP BY site, size
            """, arguments: ["today": today.daysSinceEpoch, "start": period.start.daysSinceEpoch,
                             "end": period.end.daysSinceEpoch, "site": site])
        while let row = try rows.next() {
            let key = Key(site: try row.decode(String?.self, atIndex: 0), size: try row.decode(String.self, atIndex: 1))
            counts[key, default: 0] += try count(row, 2)
        }
        return counts
    }

    /// A non-negative integer in column `index` (NULL: 0); anything else is damage.
    private static func count(_ row: Row, _ index: Int) throws -> Int {
        let value = try AllocatorStore.storedInteger(row, index) ?? 0
        guard value >= 0 else { throw StoredContentDamage("a stored period runs backwards (a negative count of days)") }
        return value
    }
}
