import GRDB
import Rentals

/// What the change saga needs from availability (A), prices (P) and the waiting list (W), in one
/// place: each is a call into the owner's API.
extension AllocationService {
    /// The price of an extension, or why it is refused.
    enum ChangePrice {
        /// The rental's new price (nil: unpriced, as before).
        case priced(RentalPrice?)
        /// No price can be agreed for the added days.
        case refused(String)
    }

    /// True when `unit` holds no assigned rental but `request`'s overlapping `period`.
    func unitIsFree(_ unit: String, period: RentalPeriod, excluding request: String, _ db: Database) throws -> Bool {
        // X: until fix11/availability lands: Availability.isUnitFree(unit, period:, excluding:, db)
        try Bool.fetchOne(db, sql: """
            SELECT 1 FROM rental WHERE state = 'assigned' AND unit_id = ? AND request_id <> ? AND start_day < ? AND end_day > ?
            """, arguments: [unit, request, period.end.daysSinceEpoch, period.start.daysSinceEpoch]) != true
    }

    /// The price of the rental in `status` extended to `day`: its lines plus one for
    /// `[status.to, day)` at the rate in force now. An unpriced rental stays unpriced.
    func extendedPrice(_ status: RentalStatus, to day: CalendarDay, _ db: Database) throws -> ChangePrice {
        guard status.price != nil else { return .priced(nil) }
        // X: until fix11/prices lands: PriceBook.current + RentalPrice.extended(to:at:)
        return .refused("prices are not supported by this allocator yet")
    }

    /// `price` cut to end on `day` (the cut line re-priced).
    func endedPrice(_ price: RentalPrice?, on day: CalendarDay) -> RentalPrice? {
        price  // X: until fix11/prices lands: price?.ended(on: day)
    }

    /// Records the rental's agreed price in the store's columns.
    func recordPrice(_ price: RentalPrice?, request: String, _ db: Database) throws {
        // X: until fix11/prices lands: PriceBook.record(price, request: request, db)
    }

    /// Offers the days an end freed to the waiting list (same transaction).
    func promoteAfterEnd(_ status: RentalStatus, today: CalendarDay, now: Int64, _ db: Database) throws {
        // X: until fix11/waitlist lands: Waitlist.promote(size: status.size, site: status.site, today:, now:, configuration:, db)
    }
}
