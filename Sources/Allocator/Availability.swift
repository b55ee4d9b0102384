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
/// (``bestUnit(size:period:_:)``), and gives the unit ``BestFit/choose(for:among:)`` gives on
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
enum Availability {
    /// Best fit among the in-service units of `size` for `period`, or nil if none is free.
    ///
    /// - Throws: ``StoredContentDamage`` for a stored day that is not a day, or when the chosen
    ///   unit holds a rental overlapping `period` (the store's invariant is broken); GRDB errors.
    static func bestUnit(size: String, period: RentalPeriod, _ db: Database) throws -> StorageUnit? {
        var best: (score: Int, unit: StorageUnit)?
        try forEachFreeUnit(size: size, period: period, db) { unit, score in
            // Rows come by id: a later unit wins only with a strictly lower score.
            if best == nil || score < best!.score { best = (score, unit) }
            return true
        }
        guard let best else { return nil }
        try verifyFree(best.unit.id, period: period, db)
        return best.unit
    }

    /// True when some in-service unit of `size` is free for the whole of `period`.
    static func hasFreeUnit(size: String, period: RentalPeriod, _ db: Database) throws -> Bool {
        var found = false
        try forEachFreeUnit(size: size, period: period, db) { _, _ in
            found = true
            return false
        }
        return found
    }

    static let neighboursSQL = """
        SELECT u.id, u.size, u.site, u.in_service,
          (SELECT r.end_day FROM rental r
            WHERE r.state = 'assigned' AND r.unit_id = u.id AND r.start_day < :end
            ORDER BY r.start_day DESC LIMIT 1) AS previous_end,
          (SELECT r.start_day FROM rental r
            WHERE r.state = 'assigned' AND r.unit_id = u.id AND r.start_day >= :end
            ORDER BY r.start_day LIMIT 1) AS next_start
        FROM unit u WHERE u.size = :size AND u.in_service = 1 ORDER BY u.id
        """

    /// Calls `body` with each free in-service unit of `size` (by id) and its best-fit score, until
    /// `body` returns false.
    private static func forEachFreeUnit(size: String, period: RentalPeriod, _ db: Database,
                                        _ body: (StorageUnit, Int) throws -> Bool) throws {
        let statement = try db.cachedStatement(sql: neighboursSQL)
        let rows = try Row.fetchCursor(statement, arguments: ["end": period.end.daysSinceEpoch, "size": size])
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
    /// unit of `size` is free for `period.days` days, or nil: ``BestFit/earliestStart(for:among:horizonDays:)``
    /// on the same store. Per unit, the earliest such start is `period.start` or the end of one of
    /// its holdings, found by walking its holdings in start order from the one covering
    /// `period.start` to the first gap long enough.
    static func earliestStart(size: String, period: RentalPeriod, horizonDays: Int = 365, _ db: Database) throws -> CalendarDay? {
        let limit = period.start.daysSinceEpoch + horizonDays, days = period.days
        let units = try String.fetchAll(db.cachedStatement(sql: "SELECT id FROM unit WHERE size = ? AND in_service = 1 ORDER BY id"),
                                        arguments: [size])
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
