#if canImport(Glibc)
import Glibc
#endif

/// A calendar date (no time, no zone), stored as days since 1970-01-01. Rental periods are
/// half-open ranges of these: `[from, to)`. Text form: ISO 8601 `YYYY-MM-DD`.
public struct CalendarDay: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// Days since 1970-01-01 (negative before).
    public let daysSinceEpoch: Int

    /// The day `daysSinceEpoch` days after 1970-01-01.
    public init(daysSinceEpoch: Int) { self.daysSinceEpoch = daysSinceEpoch }

    /// The day with this year, month (1–12) and day of month, or nil if there is no such date.
    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month),
              (1...Self.daysIn(year: year, month: month)).contains(day) else { return nil }
        // Howard Hinnant's days_from_civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        daysSinceEpoch = era * 146_097 + dayOfEra - 719_468
    }

    /// Parses exactly `YYYY-MM-DD`; nil for anything else, including impossible dates.
    public init?(iso text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10) else { return nil }
        self.init(year: year, month: month, day: day)
    }

    /// Year, month and day of month.
    public var components: (year: Int, month: Int, day: Int) {
        // Howard Hinnant's civil_from_days.
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// The same day of the month `months` months later, clamped to the month's last day
    /// (2027-01-31 plus one month is 2027-02-28).
    public func adding(months: Int) -> CalendarDay? {
        let (year, month, day) = components
        let (index, overflow) = (year * 12 + (month - 1)).addingReportingOverflow(months)
        guard !overflow, index >= 0 else { return nil }
        let newYear = index / 12, newMonth = index % 12 + 1
        guard (1...9999).contains(newYear) else { return nil }
        return CalendarDay(year: newYear, month: newMonth, day: min(day, Self.daysIn(year: newYear, month: newMonth)))
    }

    /// The last day the calendar handles: 9999-12-31.
    public static let latest = CalendarDay(year: 9999, month: 12, day: 31)!

    /// `days` days later.
    public func adding(days: Int) -> CalendarDay { CalendarDay(daysSinceEpoch: daysSinceEpoch + days) }

    /// Today in the server's local time zone.
    public static func today() -> CalendarDay {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        return CalendarDay(year: Int(parts.tm_year) + 1900, month: Int(parts.tm_mon) + 1, day: Int(parts.tm_mday))!
    }

    static func daysIn(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    public var description: String {
        let (year, month, day) = components
        return "\(zeroPadded(year, 4))-\(zeroPadded(month, 2))-\(zeroPadded(day, 2))"
    }

    public static func < (lhs: CalendarDay, rhs: CalendarDay) -> Bool { lhs.daysSinceEpoch < rhs.daysSinceEpoch }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let day = CalendarDay(iso: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a YYYY-MM-DD date: \(text)"))
        }
        self = day
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// A rental period: the days from `start` up to, not including, `end`.
public struct RentalPeriod: Hashable, Sendable, Codable, CustomStringConvertible {
    /// First day of the rental.
    public let start: CalendarDay
    /// The day after the last day of the rental.
    public let end: CalendarDay

    /// A period; nil unless `start < end`.
    public init?(start: CalendarDay, end: CalendarDay) {
        guard start < end else { return nil }
        self.start = start
        self.end = end
    }

    /// Number of days.
    public var days: Int { end.daysSinceEpoch - start.daysSinceEpoch }

    /// True when the two periods share at least one day.
    public func overlaps(_ other: RentalPeriod) -> Bool { start < other.end && other.start < end }

    public var description: String { "\(start)..\(end)" }

    enum CodingKeys: String, CodingKey { case start = "from", end = "to" }

    /// Decodes `{"from": …, "to": …}`; refuses a period that does not end after it starts (the
    /// allocator would take it for one that overlaps nothing).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let start = try container.decode(CalendarDay.self, forKey: .start), end = try container.decode(CalendarDay.self, forKey: .end)
        guard let period = RentalPeriod(start: start, end: end) else {
            throw DecodingError.dataCorruptedError(forKey: .end, in: container, debugDescription: "period \(start)..\(end) does not end after it starts")
        }
        self = period
    }
}

/// `value` in decimal, left-padded with zeros to `width` digits.
func zeroPadded(_ value: some BinaryInteger, _ width: Int) -> String {
    let text = String(value)
    return String(repeating: "0", count: max(0, width - text.count)) + text
}
