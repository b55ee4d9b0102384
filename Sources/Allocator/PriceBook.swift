import GRDB
import Rentals

/// The monthly rates (store table `rate`, schema v4) and the price agreed for each rental
/// (`rental.currency`, `rental.amount_minor`; the lines are in the status document).
///
/// Rates are a history: `set` inserts a row, never updates one, so every rate ever in force stays
/// auditable (`spoolctl prices history`). The rate in force for a size at a site, in a currency,
/// is the newest row (`seq`) for (size, site, currency), else the newest for (size, '' = every
/// site, currency). Rates are per currency: after the configured `currency` changes, no rate of
/// the old one applies (bookings are unpriced until rates of the new one are set), and every
/// rental keeps the currency and amount it was agreed in.
///
/// Every function runs inside the caller's transaction `db` (a decision's, or a read's).
public enum PriceBook {
    /// The highest monthly rate `set` accepts, in minor units: 10^15 (EUR 10,000,000,000,000.00).
    /// With it, no period the allocator accepts (`max_period_months` ≤ 1200) nor any sum of
    /// lines can overflow `Int64` (1201 × 10^15 < 9.2 × 10^18).
    public static let maximumMonthlyMinor: Int64 = 1_000_000_000_000_000

    /// The monthly rate in force (minor units of `currency`) for `size` at `site`, nil if none.
    public static func current(size: String, site: String, currency: String, _ db: Database) throws -> Int64? {
        let statement = try db.cachedStatement(sql: """
            SELECT monthly_minor FROM rate WHERE size = ? AND site = ? AND currency = ? ORDER BY seq DESC LIMIT 1
            """)
        if !site.isEmpty, let rate = try Int64.fetchOne(statement, arguments: [size, site, currency]) { return rate }
        return try Int64.fetchOne(statement, arguments: [size, "", currency])
    }

    /// Records a new rate, in force from now on, for `size` at `site` (nil: every site without
    /// its own rate). Existing rentals keep their price.
    ///
    /// - Throws: ``PriceError/rateOutOfRange`` for a rate below 0 or above
    ///   ``maximumMonthlyMinor``; ``PriceError/invalidCurrency`` unless `currency` is an ISO 4217
    ///   code; GRDB's errors.
    public static func set(size: String, site: String?, monthlyMinor: Int64, currency: String, by: String, now: Int64, _ db: Database) throws {
        guard (0...maximumMonthlyMinor).contains(monthlyMinor) else { throw PriceError.rateOutOfRange(monthlyMinor, currency: currency) }
        guard Currency.exponent(currency) != nil else { throw PriceError.invalidCurrency(currency) }
        try db.execute(sql: "INSERT INTO rate (size, site, monthly_minor, currency, set_at, set_by) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [size, site ?? "", monthlyMinor, currency, now, by])
    }

    /// What a booking of `size` at `site` for `period` is quoted.
    public enum Quote: Sendable, Equatable {
        /// No currency configured, or no rate in force: the rental is unpriced (`price` null).
        case unpriced
        /// One line at the rate in force.
        case priced(RentalPrice)
        /// A rate is in force but the amount does not fit in 64 bits (a rate written around
        /// `prices set`'s limit): the booking is refused with this reason, never trapped.
        case unpriceable(reason: String)
    }

    /// The quote for booking `size` at `site` for `period` in `currency` (see ``Quote``).
    public static func quotation(size: String, site: String, period: RentalPeriod, currency: String?, _ db: Database) throws -> Quote {
        guard let currency, let rate = try current(size: size, site: site, currency: currency, db) else { return .unpriced }
        guard let price = RentalPrice.booking(period: period, monthlyRateMinor: rate, currency: currency) else {
            return .unpriceable(reason: "the period \(period.start) to \(period.end) cannot be priced at \(Currency.format(Money(minor: rate, currency: currency))) per month (the amount is too large)")
        }
        return .priced(price)
    }

    /// The price of booking `size` at `site` for `period`: one line at the rate in force. Nil
    /// when `currency` is nil, no rate applies, or the amount overflows (see ``quotation``,
    /// which tells the last apart).
    public static func quote(size: String, site: String, period: RentalPeriod, currency: String?, _ db: Database) throws -> RentalPrice? {
        if case .priced(let price) = try quotation(size: size, site: site, period: period, currency: currency, db) { return price }
        return nil
    }

    /// Writes `rental.currency` and `rental.amount_minor` of `request` for `price` (NULL both
    /// when nil). Call after every change of a rental's price, in the same transaction.
    public static func record(_ price: RentalPrice?, request: String, _ db: Database) throws {
        try db.execute(sql: "UPDATE rental SET currency = ?, amount_minor = ? WHERE request_id = ?",
                       arguments: [price?.currency, price?.totalMinor, request])
    }
}

/// Why a rate was refused.
public enum PriceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Below 0 or above ``PriceBook/maximumMonthlyMinor``.
    case rateOutOfRange(Int64, currency: String)
    /// Not three upper-case letters.
    case invalidCurrency(String)

    public var description: String {
        switch self {
        case .rateOutOfRange(let minor, let currency):
            return "monthly rate \(Currency.format(Money(minor: minor, currency: currency))) is out of range: 0 to \(Currency.format(Money(minor: PriceBook.maximumMonthlyMinor, currency: currency)))"
        case .invalidCurrency(let code): return "currency \(code.echoed) is not an ISO 4217 code (three upper-case letters)"
        }
    }
}
