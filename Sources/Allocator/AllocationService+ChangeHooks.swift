import GRDB
import Rentals

/// What the change saga takes from availability, prices and the waiting list, in one place.
extension AllocationService {
    /// The price of an extension, or why it is refused.
    enum ChangePrice {
        /// The rental's new price (nil: unpriced, as before).
        case priced(RentalPrice?)
        /// No price can be agreed for the added days.
        case refused(String)
    }

    /// True when `unit` is in service and holds no assigned rental but `request`'s overlapping
    /// `period` (``Availability/isUnitFree(_:period:excluding:_:)``).
    func unitIsFree(_ unit: String, period: RentalPeriod, excluding request: String, _ db: Database) throws -> Bool {
        try Availability.isUnitFree(unit, period: period, excluding: request, db)
    }

    /// The price of the rental in `status` extended to `day`: its lines plus one for
    /// `[status.to, day)` at the rate in force now for its size and site, in the currency it was
    /// agreed in (``PriceBook/current(size:site:currency:_:)``). An unpriced rental stays
    /// unpriced; a priced one with no rate in force now, or whose amount would overflow, is
    /// refused (never extended for free).
    func extendedPrice(_ status: RentalStatus, to day: CalendarDay, _ db: Database) throws -> ChangePrice {
        guard let price = status.price else { return .priced(nil) }
        guard let rate = try PriceBook.current(size: status.size, site: status.site ?? "", currency: price.currency, db) else {
            return .refused("no \(price.currency) rate is in force for size \(status.size) at \(status.site ?? "its site"), so the added days cannot be priced")
        }
        guard let extended = price.extended(to: day, at: rate) else {
            return .refused("the added days cannot be priced (the amount is out of range)")
        }
        return .priced(extended)
    }

    /// `price` cut to end on `day` (``RentalPrice/ended(on:)``: the cut line re-priced).
    func endedPrice(_ price: RentalPrice?, on day: CalendarDay) -> RentalPrice? {
        price?.ended(on: day)
    }

    /// Records the rental's agreed price in the store's columns (``PriceBook/record(_:request:_:)``).
    func recordPrice(_ price: RentalPrice?, request: String, _ db: Database) throws {
        try PriceBook.record(price, request: request, db)
    }

    /// Offers the days an end freed on the rental's unit to the waiting list, in this
    /// transaction (``promoteAfterRelease(unit:now:_:)``).
    func promoteAfterEnd(_ status: RentalStatus, now: Int64, _ db: Database) throws {
        try promoteAfterRelease(unit: status.unit, now: now, db)
    }
}
