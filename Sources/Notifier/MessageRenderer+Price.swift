import Rentals

extension MessageRenderer {
    /// The price lines of a message body, none when unpriced (so an unpriced confirmation keeps
    /// the text it had before prices existed):
    ///
    ///     Rate:    EUR 79.00 per month
    ///     Total:   EUR 237.00
    ///
    /// A price of several lines (a booking and its extensions) lists each stretch before the total:
    ///
    ///     Price:   2027-01-01 until 2027-04-01 at EUR 79.00 per month: EUR 237.00
    static func priceLines(_ price: RentalPrice?) -> [String] {
        guard let price else { return [] }
        func money(_ minor: Int64) -> String { clean(Currency.format(Money(minor: minor, currency: price.currency))) }
        var lines: [String] = []
        if price.lines.count == 1, let line = price.lines.first {
            lines.append("  Rate:    \(money(line.monthlyRateMinor)) per month")
        } else {
            for line in price.lines {
                lines.append("  Price:   \(line.from) until \(line.to) at \(money(line.monthlyRateMinor)) per month: \(money(line.amountMinor))")
            }
        }
        lines.append("  Total:   \(money(price.totalMinor))")
        return lines
    }
}
