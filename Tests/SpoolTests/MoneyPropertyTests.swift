import PropertyBased
import Rentals
import Testing

/// Money is exact (issue 11, prices): amounts are parsed digit by digit into `Int64` minor
/// units and formatted back without loss, and a period's price equals an independent rational
/// computation (in `Int128`) of rate × (whole months + days / 30), rounded half up; anything
/// that does not fit is nil, never a trap.
@Suite struct MoneyPropertyTests {
    static let codes = ["EUR", "JPY", "KWD", "CLF", "XYZ"]  // 2, 0, 3, 4 decimals; XYZ: unknown, 2
    /// Digits, points and everything that looks like part of a number but is not plain ASCII decimal.
    static let alphabet: [Character] = ["0", "1", "5", "9", ".", ".", "-", "+", "e", "x", ",", " ", "_", "\u{0663}", "\u{FF15}", "\u{00B2}"]
    static let specialRates: [Int64] = [0, 1, 14, 15, 29, 30, 7900, 999_999, Int64.max / 1201, Int64.max / 30, Int64.max - 1, Int64.max]

    /// The independent oracle: months counted one at a time with the calendar, the price as a
    /// 128-bit rational rounded half up; nil when it does not fit in `Int64`.
    static func expectedAmount(rate: Int64, period: RentalPeriod) -> Int64? {
        var months = 0
        while let next = period.start.adding(months: months + 1), next <= period.end { months += 1 }
        let afterMonths = period.start.adding(months: months)!
        let days = period.end.daysSinceEpoch - afterMonths.daysSinceEpoch
        let thirtieths = Int128(rate) * Int128(30 * months + days)  // the price × 30
        let rounded = (thirtieths + 15) / 30
        return rounded <= Int128(Int64.max) ? Int64(rounded) : nil
    }

    /// The independent reading of decimal text: every character an ASCII digit except one
    /// optional point with 1 to `exponent` digits after it; value summed in `Int128`.
    static func expectedParse(_ text: String, exponent: Int) -> Int64? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty else { return nil }
        if parts.count == 2 { guard parts[1].count >= 1, parts[1].count <= exponent else { return nil } }
        let digits = parts.joined() + String(repeating: "0", count: exponent - (parts.count == 2 ? parts[1].count : 0))
        var value: Int128 = 0
        for scalar in digits.unicodeScalars {
            guard ("0"..."9").contains(scalar) else { return nil }
            value = value * 10 + Int128(scalar.value - 48)
            if value > Int128(Int64.max) { return nil }
        }
        return Int64(value)
    }

    @Test func moneyNeverUsesFloatingPoint() async {
        // Round trip: every non-negative amount formats to text that parses back exactly, in
        // every currency (no binary fraction could do this for 0.10 or 2^53 + 1 minor units).
        await propertyCheck(count: 500, input: Gen.int64(in: 0...Int64.max), Gen.int(in: 0...4).map { Self.codes[$0] }) { minor, code in
            let money = Money(minor: minor, currency: code)
            let text = Currency.format(money)
            #expect(text.hasPrefix("\(code) "))
            #expect(Currency.parse(String(text.dropFirst(4)), code: code) == money, "\(text)")
        }
        // Any text: parse agrees with the independent reading, so nothing but plain digits and
        // at most the currency's decimals is ever accepted.
        let text = Gen.int(in: 0...(Self.alphabet.count - 1)).array(of: 0...24).map { String($0.map { Self.alphabet[$0] }) }
        await propertyCheck(count: 2000, input: text, Gen.int(in: 0...4).map { Self.codes[$0] }) { text, code in
            let exponent = Currency.exponent(code)!
            #expect(Currency.parse(text, code: code)?.minor == Self.expectedParse(text, exponent: exponent), "\(text.debugDescription) \(code)")
        }
        // Prices: equal to the rational computation for any rate, start and length, overflow
        // included (nil exactly when the true amount exceeds Int64.max).
        let rates = Gen.int(in: 0...(Self.specialRates.count - 1)).map { Self.specialRates[$0] }
        // Days -2000 (1964) to 2,880,000 plus up to 40,000: within the calendar's year 9999.
        await propertyCheck(count: 1000, input: Gen.int64(in: 0...Int64.max), Gen.int64(in: 0...100_000_000), rates,
                            Gen.int(in: -2000...2_880_000), Gen.int(in: 1...40_000)) { huge, plain, special, start, days in
            for rate in [huge, plain, special] {
                let period = RentalPeriod(start: CalendarDay(daysSinceEpoch: start), end: CalendarDay(daysSinceEpoch: start + days))!
                #expect(Pricing.amount(monthlyRateMinor: rate, period: period) == Self.expectedAmount(rate: rate, period: period),
                        "rate \(rate) period \(period)")
            }
        }
    }

    @Test func amountsThatLookLikeNumbersAreRefused() {
        for text in ["", ".", "79.", ".50", "79.001", "-1", "+1", " 79", "79 ", "1e3", "1E3", "0x10", "1,000", "1_000", "1'000",
                     "\u{0663}", "7\u{FF19}", "\u{00B2}", "79.0\u{0663}", "9223372036854775808", "92233720368547758.08", "NaN", "inf"] {
            #expect(Currency.parse(text, code: "EUR") == nil, "\(text.debugDescription)")
        }
        #expect(Currency.parse("92233720368547758.07", code: "EUR")?.minor == Int64.max)
        #expect(Currency.parse("79", code: "EUR")?.minor == 7900)
        #expect(Currency.parse("79.5", code: "EUR")?.minor == 7950)
        #expect(Currency.parse("0.10", code: "EUR")?.minor == 10)
        #expect(Currency.parse("1200", code: "JPY")?.minor == 1200)
        #expect(Currency.parse("12.5", code: "JPY") == nil, "JPY has no decimals")
        #expect(Currency.parse("1.250", code: "KWD")?.minor == 1250)
        #expect(Currency.parse("79.00", code: "eur") == nil, "not an ISO 4217 code")
        #expect(Currency.format(Money(minor: 7900, currency: "EUR")) == "EUR 79.00")
        #expect(Currency.format(Money(minor: 5, currency: "EUR")) == "EUR 0.05")
        #expect(Currency.format(Money(minor: -50, currency: "EUR")) == "EUR -0.50")
        #expect(Currency.format(Money(minor: Int64.min, currency: "JPY")) == "JPY -9223372036854775808")
        #expect(Currency.format(Money(minor: 1250, currency: "KWD")) == "KWD 1.250")
        #expect(Currency.exponent("EUR") == 2 && Currency.exponent("XYZ") == 2 && Currency.exponent("JPY") == 0)
        #expect(Currency.exponent("EU") == nil && Currency.exponent("EURO") == nil && Currency.exponent("E1R") == nil)
    }

    func day(_ text: String) -> CalendarDay { CalendarDay(iso: text)! }
    func period(_ from: String, _ to: String) -> RentalPeriod { RentalPeriod(start: day(from), end: day(to))! }

    @Test func wholeMonthsThenDaysRoundedHalfUp() {
        #expect(Pricing.amount(monthlyRateMinor: 7900, period: period("2027-01-01", "2027-04-01")) == 23700)
        // 2027-01-31 + 1 month = 2027-02-28 (clamped): one month and one day to 03-01.
        #expect(Pricing.months(in: period("2027-01-31", "2027-03-01"))! == (1, 1))
        #expect(Pricing.amount(monthlyRateMinor: 3000, period: period("2027-01-31", "2027-03-01")) == 3100)
        // 10 days of 7900: 2633.33 → 2633; 15 days of 1: 0.5 → 1 (half up); 14 days: 0.47 → 0.
        #expect(Pricing.amount(monthlyRateMinor: 7900, period: period("2027-01-01", "2027-01-11")) == 2633)
        #expect(Pricing.amount(monthlyRateMinor: 1, period: period("2027-01-01", "2027-01-16")) == 1)
        #expect(Pricing.amount(monthlyRateMinor: 1, period: period("2027-01-01", "2027-01-15")) == 0)
        #expect(Pricing.amount(monthlyRateMinor: -1, period: period("2027-01-01", "2027-02-01")) == nil)
        // A 10-year rental at the highest rate prices set accepts fits; at Int64.max it is nil.
        let tenYears = period("2027-01-01", "2037-01-01")
        #expect(Pricing.amount(monthlyRateMinor: 1_000_000_000_000_000, period: tenYears) == 120_000_000_000_000_000)
        #expect(Pricing.amount(monthlyRateMinor: Int64.max, period: tenYears) == nil)
        #expect(Pricing.amount(monthlyRateMinor: Int64.max, period: period("2027-01-01", "2027-02-01")) == Int64.max)
    }

    @Test func extensionAddsALineAndAnEarlyEndRepricesTheCutLine() throws {
        let booked = try #require(RentalPrice.booking(period: period("2027-01-01", "2027-04-01"), monthlyRateMinor: 7900, currency: "EUR"))
        #expect(booked.totalMinor == 23700 && booked.lines.count == 1)
        let extended = try #require(booked.extended(to: day("2027-05-01"), at: 9900))
        #expect(extended.lines.count == 2 && extended.lines[1] == PriceLine(from: day("2027-04-01"), to: day("2027-05-01"), monthlyRateMinor: 9900, amountMinor: 9900))
        #expect(extended.totalMinor == 33600)
        #expect(booked.summary == "EUR 237.00 (EUR 79.00 per month)")
        #expect(extended.summary == "EUR 336.00 (EUR 79.00 per month, from 2027-04-01 EUR 99.00)")
        #expect(booked.extended(to: day("2027-04-01"), at: 9900) == nil, "not later")
        #expect(booked.extended(to: day("2027-05-01"), at: Int64.max) == nil, "overflowing total")
        // End inside the extension: the booking stands, the extension line is cut to 15 days.
        let endedInExtension = extended.ended(on: day("2027-04-16"))
        #expect(endedInExtension.lines.map(\.amountMinor) == [23700, 4950] && endedInExtension.totalMinor == 28650)
        // End inside the booking: the extension line goes, the booking is cut to one month.
        let endedInBooking = extended.ended(on: day("2027-02-01"))
        #expect(endedInBooking.lines == [PriceLine(from: day("2027-01-01"), to: day("2027-02-01"), monthlyRateMinor: 7900, amountMinor: 7900)])
        #expect(endedInBooking.totalMinor == 7900)
        #expect(extended.ended(on: day("2027-05-01")) == extended, "at the end: unchanged")
    }
}
