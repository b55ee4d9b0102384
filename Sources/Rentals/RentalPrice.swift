/// An amount of money: integer minor units (cents) of a currency, never floating point.
/// JSON `{"currency": "EUR", "minor": 7900}`.
public struct Money: Codable, Sendable, Hashable {
    /// The amount in the currency's minor unit.
    public var minor: Int64
    /// The ISO 4217 code.
    public var currency: String

    /// An amount.
    public init(minor: Int64, currency: String) {
        self.minor = minor
        self.currency = currency
    }
}

/// One priced stretch of a rental: the booking, or one extension.
public struct PriceLine: Codable, Sendable, Equatable {
    /// First day priced.
    public var from: CalendarDay
    /// The day after the last day priced.
    public var to: CalendarDay
    /// The monthly rate in force when the line was agreed (minor units).
    public var monthlyRateMinor: Int64
    /// What the stretch costs (minor units).
    public var amountMinor: Int64

    /// A line.
    public init(from: CalendarDay, to: CalendarDay, monthlyRateMinor: Int64, amountMinor: Int64) {
        self.from = from
        self.to = to
        self.monthlyRateMinor = monthlyRateMinor
        self.amountMinor = amountMinor
    }

    enum CodingKeys: String, CodingKey {
        case from, to
        case monthlyRateMinor = "monthly_rate_minor", amountMinor = "amount_minor"
    }
}

/// The price a rental was agreed at (status key `price`): fixed at booking (or at promotion
/// from the waiting list), one more line per extension at the rate then in force; a later rate
/// change never alters it.
public struct RentalPrice: Codable, Sendable, Equatable {
    /// The ISO 4217 code of every line.
    public var currency: String
    /// The booking line, then one line per extension, in period order.
    public var lines: [PriceLine]
    /// The sum of the lines' amounts (minor units).
    public var totalMinor: Int64

    /// A price.
    public init(currency: String, lines: [PriceLine], totalMinor: Int64) {
        self.currency = currency
        self.lines = lines
        self.totalMinor = totalMinor
    }

    enum CodingKeys: String, CodingKey {
        case currency, lines
        case totalMinor = "total_minor"
    }
}
