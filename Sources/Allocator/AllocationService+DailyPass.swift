#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import Logging
import Rentals
import Spool

/// The allocator's calendar: its "today" and the daily pass that completes ended rentals and
/// expires waiting requests.
extension AllocationService {
    /// The environment variable of the test hook that shifts the allocator's date by a whole
    /// number of days (may be negative). Read only by `spool-allocator` at start (never by the
    /// setgid `spoolctl`), logged at warning when set: for end-to-end tests of expiry.
    public static let testDayOffsetVariable = "SPOOL_TEST_DAY_OFFSET"

    /// The day offset `environment` sets (``testDayOffsetVariable``): nil when unset; an
    /// integer within ±36,500 days, else nil with `invalid` true.
    public static func testDayOffset(environment: [String: String]) -> (offset: Int?, invalid: Bool) {
        guard let text = environment[testDayOffsetVariable], !text.isEmpty else { return (nil, false) }
        guard let days = Int(text), (-36_500...36_500).contains(days) else { return (nil, true) }
        return (days, false)
    }

    /// The allocator's today at `now` (milliseconds): the date in the server's local time zone
    /// (as ``CalendarDay/today()``) plus the test day offset the daemon was started with.
    public func today(now: Int64 = Clock.nowMilliseconds()) -> CalendarDay {
        Self.localDay(now).adding(days: dayOffset)
    }

    /// The date of `milliseconds` in the server's local time zone.
    static func localDay(_ milliseconds: Int64) -> CalendarDay {
        var seconds = time_t(milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return CalendarDay(year: Int(parts.tm_year) + 1900, month: Int(parts.tm_mon) + 1, day: Int(parts.tm_mday))
            ?? CalendarDay(daysSinceEpoch: Int(milliseconds / 86_400_000))
    }

    /// The daily pass, in one store transaction: every assigned rental whose period ended by
    /// `today` becomes `completed` (journaled, step 6 of its revision, no notification), and
    /// every waiting request whose start is `today` or earlier becomes `expired` (step 4, an
    /// `expiry` notification; see ``Waitlist/expire(today:now:_:)``). Idempotent: a second pass
    /// the same day finds nothing. Does not publish: call ``drainOutbox()`` after.
    @discardableResult
    public func dailyPass(today: CalendarDay, now: Int64) throws -> (completed: Int, expired: Int) {
        try store.write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT request_id, status FROM rental WHERE state = 'assigned' AND end_day <= ?",
                                        arguments: [today.daysSinceEpoch])
            for row in rows {
                guard var status = RentalStatus(document: try row.decode(String.self, forColumn: "status")) else { continue }
                status.state = .completed
                status.updatedAt = Timestamp(milliseconds: now)
                status.version = RentalStatus.version(revision: status.revision, step: 6)
                try db.execute(sql: "UPDATE rental SET state = 'completed', status = ?, updated_at = ? WHERE request_id = ?",
                               arguments: [status.jsonText(), now, try row.decode(String.self, forColumn: "request_id")])
                try db.execute(sql: "INSERT INTO outbox (kind, payload) VALUES ('journal', ?)", arguments: [Data(status.indexEvent().encoded())])
            }
            let expired = try Waitlist.expire(today: today, now: now, db)
            return (rows.count, expired)
        }
    }

    /// ``dailyPass(today:now:)`` for the allocator's today at `now`.
    @discardableResult
    public func dailyPass(now: Int64 = Clock.nowMilliseconds()) throws -> (completed: Int, expired: Int) {
        try dailyPass(today: today(now: now), now: now)
    }

    /// The completion half of the daily pass, under its former name (returns how many rentals
    /// completed; waiting requests are expired too).
    @discardableResult
    public func completeEndedRentals(today: CalendarDay? = nil, now: Int64 = Clock.nowMilliseconds()) throws -> Int {
        try dailyPass(today: today ?? self.today(now: now), now: now).completed
    }
}
