/// ISO 4217 currencies: the number of decimals of the minor unit, exact decimal parsing and
/// formatting of amounts. Never floating point: text is read digit by digit into `Int64` minor
/// units, with overflow checks.
public enum Currency {
    /// Codes whose minor unit is not 1/100 (ISO 4217), for the common currencies; every other
    /// valid code has 2 decimals.
    static let exponents: [String: Int] = [
        // No minor unit.
        "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
        "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
        // Thousandths.
        "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
        // Ten-thousandths.
        "CLF": 4, "UYW": 4,
    ]

    /// True for three upper-case ASCII letters (the form of an ISO 4217 code).
    public static func isValidCode(_ code: String) -> Bool {
        code.utf8.count == 3 && code.utf8.allSatisfy { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }
    }

    /// True when `code` is in the built-in table or is one of the common 2-decimal currencies
    /// (`config check` warns about a code it does not know, as its exponent is then assumed).
    public static func isKnown(_ code: String) -> Bool {
        exponents[code] != nil || knownTwoDecimal.contains(code)
    }

    static let knownTwoDecimal: Set<String> = [
        "AED", "ARS", "AUD", "BGN", "BRL", "CAD", "CHF", "CNY", "COP", "CZK", "DKK", "EGP", "EUR", "GBP",
        "HKD", "HUF", "IDR", "ILS", "INR", "MAD", "MXN", "MYR", "NOK", "NZD", "PEN", "PHP", "PKR", "PLN",
        "QAR", "RON", "RSD", "RUB", "SAR", "SEK", "SGD", "THB", "TRY", "TWD", "UAH", "USD", "ZAR",
    ]

    /// The number of decimals of `code`'s minor unit (EUR 2, JPY 0, KWD 3); 2 for a valid code
    /// not in the built-in table; nil unless `code` is three upper-case ASCII letters.
    public static func exponent(_ code: String) -> Int? {
        guard isValidCode(code) else { return nil }
        return exponents[code] ?? 2
    }

    /// The amount `text` in minor units of `code`: ASCII digits, optionally a `.` and at most
    /// the currency's number of decimals (`79`, `79.5`, `79.00`; for JPY no `.` at all). Nil for
    /// anything else: a sign, spaces, thousands separators, an exponent (`1e3`), hex (`0x10`),
    /// non-ASCII digits, more decimals than the currency has, an empty part before or after the
    /// `.`, or more than `Int64.max` minor units.
    public static func parse(_ text: String, code: String) -> Money? {
        guard let exponent = exponent(code) else { return nil }
        let bytes = Array(text.utf8)
        let point = bytes.firstIndex(of: UInt8(ascii: "."))
        let whole = bytes[..<(point ?? bytes.count)]
        let fraction = point.map { bytes[($0 + 1)...] } ?? []
        guard !whole.isEmpty, point == nil || (!fraction.isEmpty && fraction.count <= exponent) else { return nil }
        var minor: Int64 = 0
        func push(_ byte: UInt8) -> Bool {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return false }
            let (times, overflow) = minor.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflow, !overflow2 else { return false }
            minor = sum
            return true
        }
        for byte in whole { guard push(byte) else { return nil } }
        for byte in fraction { guard push(byte) else { return nil } }
        for _ in 0..<(exponent - fraction.count) { guard push(UInt8(ascii: "0")) else { return nil } }
        return Money(minor: minor, currency: code)
    }

    /// `EUR 79.00`, `JPY 1200`, `KWD 1.250`, `EUR -0.50`: the code, a space, the amount with
    /// exactly the currency's decimals (2 for an unknown code), no thousands separators.
    public static func format(_ money: Money) -> String {
        "\(money.currency) \(amountText(money.minor, exponent: exponent(money.currency) ?? 2))"
    }

    /// `minor` as decimal text with `exponent` decimals (`7900`, 2 → `79.00`).
    public static func amountText(_ minor: Int64, exponent: Int) -> String {
        let digits = String(minor.magnitude)  // UInt64: Int64.min has a magnitude too
        let padded = String(repeating: "0", count: max(0, exponent + 1 - digits.count)) + digits
        let split = padded.index(padded.endIndex, offsetBy: -exponent)
        let text = exponent == 0 ? padded : "\(padded[..<split]).\(padded[split...])"
        return minor < 0 ? "-" + text : text
    }
}

/// The price of a period at a monthly rate: whole calendar months from the start, then the days
/// left at rate × days / 30, rounded half up. Integer arithmetic throughout; nil on overflow.
public enum Pricing {
    /// The number of whole months from `period.start` (each counted with
    /// ``CalendarDay/adding(months:)`` from the start, so 2027-01-31 plus one month is
    /// 2027-02-28) and the days left after them (0 to 30). Nil when the calendar cannot add the
    /// months (beyond year 9999).
    public static func months(in period: RentalPeriod) -> (months: Int, days: Int)? {
        let start = period.start.components, end = period.end.components
        var months = (end.year * 12 + end.month) - (start.year * 12 + start.month)
        while months > 0 {
            guard let day = period.start.adding(months: months) else { return nil }
            if day <= period.end { return (months, period.end.daysSinceEpoch - day.daysSinceEpoch) }
            months -= 1
        }
        return (0, period.days)
    }

    /// What `period` costs at `monthlyRateMinor` a month: rate × whole months + (rate × days
    /// left + 15) / 30 (rounded half up), in minor units. Nil for a negative rate, or when the
    /// amount does not fit in `Int64` (the caller must then refuse to price, never trap).
    public static func amount(monthlyRateMinor rate: Int64, period: RentalPeriod) -> Int64? {
        guard rate >= 0, let (months, days) = months(in: period) else { return nil }
        let (whole, overflow) = rate.multipliedReportingOverflow(by: Int64(months))
        guard !overflow else { return nil }
        // rate × days / 30 = q × days + r × days / 30 with rate = 30q + r, so only q × days (no
        // more than the rate itself, days ≤ 30) can overflow, and the rounding stays exact.
        let (q, r) = rate.quotientAndRemainder(dividingBy: 30)
        let (partial, overflow2) = q.multipliedReportingOverflow(by: Int64(days))
        guard !overflow2 else { return nil }
        let (rest, overflow3) = partial.addingReportingOverflow((r * Int64(days) + 15) / 30)
        let (total, overflow4) = whole.addingReportingOverflow(rest)
        return overflow3 || overflow4 ? nil : total
    }
}

extension RentalPrice {
    /// The price of a rental booked for `period` at `monthlyRateMinor` of `currency`: one line.
    /// Nil when the amount overflows.
    public static func booking(period: RentalPeriod, monthlyRateMinor: Int64, currency: String) -> RentalPrice? {
        guard let amount = Pricing.amount(monthlyRateMinor: monthlyRateMinor, period: period) else { return nil }
        return RentalPrice(currency: currency, lines: [PriceLine(from: period.start, to: period.end, monthlyRateMinor: monthlyRateMinor, amountMinor: amount)],
                           totalMinor: amount)
    }

    /// One line for people (`spoolctl status`): `EUR 237.00 (EUR 79.00 per month)`; with
    /// extensions each stretch's rate: `EUR 336.00 (EUR 79.00 per month, from 2027-04-01 EUR 99.00)`.
    public var summary: String {
        func money(_ minor: Int64) -> String { Currency.format(Money(minor: minor, currency: currency)) }
        let rates = lines.enumerated().map { index, line in
            index == 0 ? "\(money(line.monthlyRateMinor)) per month" : "from \(line.from) \(money(line.monthlyRateMinor))"
        }
        return rates.isEmpty ? money(totalMinor) : "\(money(totalMinor)) (\(rates.joined(separator: ", ")))"
    }

    /// The end of the priced period (the last line's `to`), nil without lines.
    public var pricedUntil: CalendarDay? { lines.last?.to }

    /// The price after extending the rental to `newTo`: one more line from the current end to
    /// `newTo` at `rateMinor` (the rate in force when the extension is decided). Nil when
    /// `newTo` is not after the current end, there are no lines, or the amount overflows.
    public func extended(to newTo: CalendarDay, at rateMinor: Int64) -> RentalPrice? {
        guard let from = pricedUntil, let period = RentalPeriod(start: from, end: newTo),
              let amount = Pricing.amount(monthlyRateMinor: rateMinor, period: period) else { return nil }
        let (total, overflow) = totalMinor.addingReportingOverflow(amount)
        guard !overflow else { return nil }
        return RentalPrice(currency: currency, lines: lines + [PriceLine(from: from, to: newTo, monthlyRateMinor: rateMinor, amountMinor: amount)],
                           totalMinor: total)
    }

    /// The price after ending the rental early on `day` (the new exclusive end): lines from
    /// `day` on are dropped, the line `day` cuts is re-priced for its shorter period at its own
    /// rate (so the customer pays for the days kept: the refund is implied), the total summed
    /// again. A `day` at or after the priced end changes nothing.
    public func ended(on day: CalendarDay) -> RentalPrice {
        var kept: [PriceLine] = []
        for line in lines where line.from < day {
            guard line.to > day, let period = RentalPeriod(start: line.from, end: day) else { kept.append(line); continue }
            // Shorter than the line, so never more than its amount (no overflow).
            let amount = Pricing.amount(monthlyRateMinor: line.monthlyRateMinor, period: period) ?? line.amountMinor
            kept.append(PriceLine(from: line.from, to: day, monthlyRateMinor: line.monthlyRateMinor, amountMinor: amount))
        }
        var total: Int64 = 0
        for line in kept {
            let (sum, overflow) = total.addingReportingOverflow(line.amountMinor)
            total = overflow ? Int64.max : sum
        }
        return RentalPrice(currency: currency, lines: kept, totalMinor: total)
    }
}
