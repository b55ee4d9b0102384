import GRDB
import Rentals
import Spool

/// The best-fit rule (``BestFit``) and its alternatives search, answered by index queries over
/// the store's holdings instead of loading them: the cost of a decision does not grow with the
/// rentals held or with history.
///
/// The store's index `rental_span` holds `(unit_id, start_day, end_day, state)` of the assigned rentals
/// only (a partial index: cancelled, rejected and completed rentals are not in it). The queries
/// rely on the store's invariant that the assigned rentals of one unit never overlap (each is
/// assigned in a write transaction that found its unit free). Under it, for a period `P` and a
/// unit:
/// - the holding with the latest start before `P.end` is the only one that can overlap `P`;
///   when it does not, it is the nearest holding before `P` (its end is the latest end at or
///   before `P.start`);
/// - the holding with the earliest start at or after `P.end` is the nearest after `P`.
///
/// So best fit costs two index seeks per in-service unit of the size, whatever the unit holds
/// (``bestUnit(size:period:site:_:)``; with a site, per in-service unit of the size at that
/// site: the site is a filter on the units the seeks are made for), and gives the unit ``BestFit/choose(for:among:)`` gives on
/// the same store (the property test `availabilityMatchesTheReferenceAlgorithm` compares them
/// on random stores). The chosen unit is then checked against all its holdings that start before
/// `P.end` (one unit: bounded by what that unit holds), so a store whose invariant was broken
/// (a damaged value) is reported as damage, never double-booked.
///
/// **Bounds of the alternatives search** (rejections only): one ``hasFreeUnit(size:period:_:)``
/// query per other size (at most the configured sizes, stopping at the first with a free unit),
/// and for the earliest start one index range scan per in-service unit of the requested size,
/// reading at most the holdings that start in `[the one covering P.start, P.start + horizon +
/// P.days)`: at most `horizon + P.days + 1` rows per unit, since holdings are at least a day long
/// and never overlap, and usually a handful (the scan of a unit stops at its first gap, or once
/// it is past the best start found so far).
///
/// **Counting** (``freeUnitCount(size:period:site:_:)``, the read model's `spoolctl
/// availability`): the same two seeks per in-service unit of the size at the site, no verify.
/// **One unit** (``isUnitFree(_:period:excluding:_:)``, extensions): one primary-key lookup of
/// the unit and one range scan of `rental_span` over that unit's holdings that start before
/// `P.end` (bounded by what the unit holds; it does not rely on the invariant, so it checks every
/// such holding).
enum Availability {
    /// Best fit among the in-service units of `size` for `period`, or nil if none is free.
    ///
    /// - Throws: ``StoredContentDamage`` for a stored day that is not a day, or when the chosen
    ///   unit holds a rental overlapping `period` (the store's invariant is broken); GRDB errors.
    static func bestUnit(size: String, period: RentalPeriod, _ db: Database) throws -> StorageUnit? {
        try bestUnit(size: size, period: period, site: nil, db)
    }

    /// Best fit among the in-service units of `size` at `site` (nil: at any site) for `period`,
    /// or nil if none is free. With a site, the rule is ``BestFit/choose(for:among:)`` over that
    /// site's units only.
    ///
    /// - Throws: as ``bestUnit(size:period:_:)``.
    static func bestUnit(size: String, period: RentalPeriod, site: String?, _ db: Database) throws -> StorageUnit? {
        var best: (score: Int, unit: StorageUnit)?
        try forEachFreeUnit(size: size, period: period, site: site, db) { unit, score in
            // Rows come by id: a later unit wins only with a strictly lower score.
            if best == nil || score < best!.score { best = (score, unit) }
            return true
        }
        guard let best else { return nil }
        try verifyFree(best.unit.id, period: period, db)
        return best.unit
    }

    /// True when some in-service unit of `size` is free for the whole of `period`.
    static func hasFreeUnit(size: String, period: RentalPeriod, site: String? = nil, _ db: Database) throws -> Bool {
        var found = false
        try forEachFreeUnit(size: size, period: period, site: site, db) { _, _ in
            found = true
            return false
        }
        return found
    }

    /// How many in-service units of `size` at `site` are free for the whole of `period` (what
    /// `spoolctl availability` shows). Two index seeks per in-service unit of the size at the
    /// site; relies on the store's invariant (no verify: a count assigns nothing).
    ///
    /// - Throws: ``StoredContentDamage`` for a stored day that is not a day; GRDB errors.
    static func freeUnitCount(size: String, period: RentalPeriod, site: String, _ db: Database) throws -> Int {
        var count = 0
        try forEachFreeUnit(size: size, period: period, site: site, db) { _, _ in
            count += 1
            return true
        }
        return count
    }

    /// True when unit `unit` is in service and no assigned rental of it other than `request`
    /// overlaps `period`: whether the rental `request` may hold the unit for `period` (an
    /// extension checks the added days, or the whole new period, with it). False for a unit that
    /// does not exist. Call it in the write transaction that then changes the rental, so nothing
    /// slips in between (store v4's triggers are the last line, not the check).
    ///
    /// Cost: a primary-key lookup and one range scan of `rental_span` over the unit's holdings
    /// starting before `period.end`; every overlapping holding is found, whether or not the
    /// store's invariant holds.
    ///
    /// - Throws: ``StoredContentDamage`` for a stored `in_service` that is not an integer; GRDB errors.
    static func isUnitFree(_ unit: String, period: RentalPeriod, excluding request: String, _ db: Database) throws -> Bool {
        let service = try db.cachedStatement(sql: "SELECT in_service FROM unit WHERE id = ?")
        guard let inService = try DatabaseValue.fetchOne(service, arguments: [unit]) else { return false }
        guard try AllocatorStore.storedInteger(inService) == 1 else { return false }
        let overlapping = try db.cachedStatement(sql: """
            SELECT 1 FROM rental
            WHERE state = 'assigned' AND unit_id = :unit AND start_day < :end AND end_day > :start
              AND request_id <> :request
            LIMIT 1
            """)
        return try Int.fetchOne(overlapping, arguments: ["unit": unit, "end": period.end.daysSinceEpoch,
                                                        "start": period.start.daysSinceEpoch, "request": request]) == nil
    }

    static let neighboursSQL = """
        SELECT u.id, u.size, u.site, u.in_service,
          (SELECT r.end_day FROM rental r
            WHERE r.state = 'assigned' AND r.unit_id = u.id AND r.start_day < :end
            ORDER BY r.start_day DESC LIMIT 1) AS previous_end,
          (SELECT r.start_day FROM rental r
            WHERE r.state = 'assigned' AND r.unit_id = u.id AND r.start_day >= :end
            ORDER BY r.start_day LIMIT 1) AS next_start
        FROM unit u WHERE u.size = :size AND u.in_service = 1 AND (:site IS NULL OR u.site = :site) ORDER BY u.id
        """

    /// Calls `body` with each free in-service unit of `size` at `site` (nil: any site), by id,
    /// and its best-fit score, until `body` returns false.
    private static func forEachFreeUnit(size: String, period: RentalPeriod, site: String?, _ db: Database,
                                        _ body: (StorageUnit, Int) throws -> Bool) throws {
        let statement = try db.cachedStatement(sql: neighboursSQL)
        let rows = try Row.fetchCursor(statement, arguments: ["end": period.end.daysSinceEpoch, "size": size, "site": site])
        while let row = try rows.next() {
            let previousEnd = try optionalDay(row, 4), nextStart = try optionalDay(row, 5)
            guard let score = BestFit.score(period, previousEnd: previousEnd, nextStart: nextStart) else { continue }
            let unit = StorageUnit(id: try row.decode(String.self, atIndex: 0), size: try row.decode(String.self, atIndex: 1),
                                   site: try row.decode(String.self, atIndex: 2), inService: true)
            guard try body(unit, score) else { return }
        }
    }

    /// Throws ``StoredContentDamage`` when unit `id` holds a rental that overlaps `period`.
    private static func verifyFree(_ id: String, period: RentalPeriod, _ db: Database) throws {
        let statement = try db.cachedStatement(sql: """
            SELECT start_day, end_day FROM rental
            WHERE state = 'assigned' AND unit_id = ? AND start_day < ? ORDER BY start_day DESC
            """)
        let rows = try Row.fetchCursor(statement, arguments: [id, period.end.daysSinceEpoch])
        while let row = try rows.next() {
            let held = try AllocatorStore.period(row)
            if held.overlaps(period) {
                throw StoredContentDamage("unit \(id) holds overlapping rentals (\(held) and a later one): the store's assignments are damaged")
            }
        }
    }

    /// The earliest start in `[period.start, period.start + horizonDays]` at which some in-service
    /// unit of `size` (at `site`; nil: any site) is free for `period.days` days, or nil:
    /// ``BestFit/earliestStart(for:among:horizonDays:)`` on the same store (that site's units).
    /// Per unit, the earliest such start is `period.start` or the end of one of its holdings,
    /// found by walking its holdings in start order from the one covering `period.start` to the
    /// first gap long enough.
    static func earliestStart(size: String, period: RentalPeriod, site: String? = nil, horizonDays: Int = 365,
                              _ db: Database) throws -> CalendarDay? {
        let limit = period.start.daysSinceEpoch + horizonDays, days = period.days
        let units = try String.fetchAll(
            db.cachedStatement(sql: "SELECT id FROM unit WHERE size = :size AND in_service = 1 AND (:site IS NULL OR site = :site) ORDER BY id"),
            arguments: ["size": size, "site": site])
        let statement = try db.cachedStatement(sql: """
            SELECT start_day, end_day FROM rental
            WHERE state = 'assigned' AND unit_id = :unit AND start_day < :stop
              AND start_day >= IFNULL((SELECT MAX(start_day) FROM rental
                                       WHERE state = 'assigned' AND unit_id = :unit AND start_day < :start), :start)
            ORDER BY start_day
            """)
        var earliest: Int?
        for unit in units {
            // No window starting after the best so far (or after the horizon) is of interest.
            let bound = min(earliest ?? limit, limit)
            var start = period.start.daysSinceEpoch
            let rows = try Row.fetchCursor(statement, arguments: ["unit": unit, "stop": bound + days, "start": start])
            while let row = try rows.next(), start <= bound {
                let held = try span(row)
                if held.end <= start { continue }
                if held.start >= start + days { break }
                start = held.end
            }
            if start <= bound, start < earliest ?? Int.max { earliest = start }
        }
        return earliest.map(CalendarDay.init(daysSinceEpoch:))
    }

    /// The period in columns 0 and 1 of `row` (`start_day`, `end_day`), checked like
    /// ``AllocatorStore/period(_:)`` but read by position (the search's inner loop).
    private static func span(_ row: Row) throws -> (start: Int, end: Int) {
        let start = try AllocatorStore.storedInteger(row, 0), end = try AllocatorStore.storedInteger(row, 1)
        guard let start, let end, AllocatorStore.storedDays.contains(start), AllocatorStore.storedDays.contains(end), start < end else {
            throw StoredContentDamage("a rental's period \(start.map(String.init) ?? "NULL")..\(end.map(String.init) ?? "NULL") is not a period")
        }
        return (start, end)
    }

    /// A nullable stored day, checked like ``AllocatorStore/day(_:_:)``.
    private static func optionalDay(_ row: Row, _ index: Int) throws -> CalendarDay? {
        guard let days = try AllocatorStore.storedInteger(row, index) else { return nil }
        guard AllocatorStore.storedDays.contains(days) else { throw StoredContentDamage("a stored day \(days) is not a day") }
        return CalendarDay(daysSinceEpoch: days)
    }
}
