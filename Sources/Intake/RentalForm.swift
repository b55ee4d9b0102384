import Rentals

/// A rental request as typed by a customer, before validation.
public struct RentalForm: Sendable, Equatable {
    /// `--customer`.
    public var customer: String
    /// `--contact`.
    public var contact: String
    /// `--size`.
    public var size: String
    /// `--from`.
    public var from: String
    /// `--to`, or nil with `--months`.
    public var to: String?
    /// `--months`, or nil with `--to`.
    public var months: Int?
    /// `--idempotency-key`.
    public var idempotencyKey: String?
    /// `--site`: only units at this site; nil: any site.
    public var site: String?
    /// `--waitlist`: wait for a unit instead of being rejected when none is free.
    public var waitlist: Bool

    /// A form.
    public init(customer: String, contact: String, size: String, from: String, to: String? = nil,
                months: Int? = nil, idempotencyKey: String? = nil, site: String? = nil, waitlist: Bool = false) {
        self.customer = customer
        self.contact = contact
        self.size = size
        self.from = from
        self.to = to
        self.months = months
        self.idempotencyKey = idempotencyKey
        self.site = site
        self.waitlist = waitlist
    }

    /// The validated fields, or the first problem as a one-line ``IntakeError`` (exit 64 for a
    /// misuse of the options, 65 for bad data).
    public func validate(_ configuration: SystemConfiguration, today: CalendarDay = .today())
        throws(IntakeError) -> (customer: String, contact: String, size: SizeClass, period: RentalPeriod) {
        guard Self.isCustomer(customer) else {
            throw IntakeError(.badData, "customer \(customer.echoed) is not an e-mail address, phone number or customer number (letters, digits, . @ + _ -; at most 128)")
        }
        guard Self.isEmail(contact) || Self.isPhone(contact) else {
            throw IntakeError(.badData, "contact \(contact.echoed) is not an e-mail address or an international phone number like +4915112345678")
        }
        guard let size = configuration.size(named: size) else {
            let known = configuration.sizes.map(\.name).joined(separator: ", ")
            throw IntakeError(.badData, "unknown unit size \(size.echoed); sizes are \(known)")
        }
        guard let start = CalendarDay(iso: from) else {
            throw IntakeError(.badData, "--from \(from.echoed) is not a date like 2027-01-31")
        }
        guard start >= today else { throw IntakeError(.badData, "--from \(start) is in the past (today is \(today))") }
        let end: CalendarDay
        switch (to, months) {
        case (nil, nil): throw IntakeError(.usage, "give the end of the rental with --to DATE or --months N")
        case (.some, .some): throw IntakeError(.usage, "give either --to or --months, not both")
        case (let to?, nil):
            guard let day = CalendarDay(iso: to) else { throw IntakeError(.badData, "--to \(to.echoed) is not a date like 2027-04-01") }
            end = day
        case (nil, let months?):
            guard months >= 1, months <= configuration.maxPeriodMonths else {
                throw IntakeError(.badData, "--months \(months) is out of range: it must be between 1 and \(configuration.maxPeriodMonths)")
            }
            guard let day = start.adding(months: months) else {
                throw IntakeError(.badData, "--from \(start) plus \(months) months is out of range: the last date the system handles is \(CalendarDay.latest)")
            }
            end = day
        }
        guard let period = RentalPeriod(start: start, end: end) else {
            throw IntakeError(.badData, "--to \(end) must be after --from \(start)")
        }
        // Near the end of the calendar the limit itself is out of range; then no end date exceeds it.
        if let limit = start.adding(months: configuration.maxPeriodMonths), end > limit {
            throw IntakeError(.badData, "the period \(period) is longer than the maximum of \(configuration.maxPeriodMonths) months")
        }
        if let key = idempotencyKey, !Self.isIdempotencyKey(key) {
            throw IntakeError(.badData, "--idempotency-key must be 1 to 128 letters, digits or . _ - (not starting with .)")
        }
        if let site, !Self.isSite(site) {
            throw IntakeError(.badData, "--site \(site.echoed) must be 1 to 64 characters on one line, as unit sites are")
        }
        return (customer, contact, size, period)
    }

    static func isCustomer(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...128).contains(bytes.count), let first = bytes.first, isAlphanumeric(first) || first == UInt8(ascii: "+") else { return false }
        return bytes.allSatisfy { isAlphanumeric($0) || ".@+_-".utf8.contains($0) }
    }

    static func isEmail(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard text.utf8.count <= 254, parts.count == 2, (1...64).contains(parts[0].utf8.count) else { return false }
        guard parts[0].utf8.allSatisfy({ isAlphanumeric($0) || "._%+-".utf8.contains($0) }),
              parts[0].first != ".", parts[0].last != "." else { return false }
        let labels = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return false }
        return labels.allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
        }
    }

    static func isPhone(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.first == UInt8(ascii: "+") else { return false }
        let digits = bytes.dropFirst()
        return (6...15).contains(digits.count) && digits.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    /// A site name as the inventory allows it (``InventoryError``'s rule): 1 to 64 characters,
    /// no control character (so none that could forge a line of a message or a log).
    static func isSite(_ text: String) -> Bool {
        (1...64).contains(text.count) && !text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.properties.isWhitespace && $0 != " " }
    }

    static func isIdempotencyKey(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...128).contains(bytes.count), bytes[0] != UInt8(ascii: ".") else { return false }
        return bytes.allSatisfy { isAlphanumeric($0) || "._-".utf8.contains($0) }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
