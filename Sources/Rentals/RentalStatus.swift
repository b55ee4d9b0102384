import Foundation
import Spool

/// The states a rental request shows.
public enum RentalState: String, Codable, Sendable, CaseIterable {
    /// Accepted and queued for the allocator.
    case received
    /// A unit is assigned; the customer is not yet notified.
    case assigned
    /// Assigned, and the customer has been notified.
    case confirmed
    /// No unit was free; see `reason` (and `notified_at` once the customer knows).
    case rejected
    /// Cancelled; its unit, if any, is free again (and `notified_at` once the customer knows).
    case cancelled
    /// The rental period has ended.
    case completed
    /// No unit was free; the request waits for one, first come first served (`submit --waitlist`).
    case waitlisted
    /// Waitlisted until its start date without a unit becoming free (and `notified_at` once the
    /// customer knows).
    case expired
}

/// A request's status as the status index holds it and `spoolctl status --json` prints it.
///
/// Each saga step produces the whole status anew at a higher ``version``: received (1),
/// assigned or rejected (2), confirmed or rejection delivered (3), cancelled (4), cancellation
/// delivered (5), completed (6), each times 1000, plus a counter for failed delivery attempts
/// within a step. The index keeps the highest version, so steps may be projected in any order.
public struct RentalStatus: Codable, Sendable, Equatable {
    /// The request id.
    public var id: String
    /// Where the request is in the saga.
    public var state: RentalState
    /// Who rents.
    public var customer: String
    /// Where notifications go.
    public var contact: String
    /// The size class.
    public var size: String
    /// First day of the rental.
    public var from: CalendarDay
    /// The day after the last day.
    public var to: CalendarDay
    /// The unit assigned (kept after a cancellation, which released it); nil before.
    public var unit: String?
    /// The unit's site.
    public var site: String?
    /// Why it was rejected.
    public var reason: String?
    /// The nearest alternative offered with a rejection.
    public var alternative: Alternative?
    /// When it was accepted.
    public var createdAt: Timestamp
    /// When this status was reached.
    public var updatedAt: Timestamp
    /// When the customer was notified of the current state (confirmation, rejection or
    /// cancellation).
    public var notifiedAt: Timestamp?
    /// When a cancel was requested.
    public var cancelRequestedAt: Timestamp?
    /// Failed delivery or processing attempts in the current step.
    public var attempts: Int
    /// The last such failure.
    public var lastError: String?
    /// The Unix user id that submitted it (access control).
    public var submittedBy: UInt32
    /// That user's name.
    public var submittedByName: String
    /// The index version of this status (see the type's description).
    public var version: Int64
    /// How many times the allocator reopened the saga after its first decision (a waitlist
    /// promotion, each extend or end decided); 0 for the first decision. JSON `revision`,
    /// omitted when 0.
    public var revision: Int = 0
    /// The last extend or end decided for this rental; JSON `change`, omitted when nil.
    public var change: ChangeOutcome?
    /// The price agreed (booking line plus one line per extension); JSON `price`, omitted when
    /// the rental is unpriced (no currency configured, no rate set).
    public var price: RentalPrice?
    /// The place in the waiting list while `waitlisted`; JSON `waitlist`, omitted otherwise.
    public var waitlist: WaitlistPlace?

    /// The status of a request just accepted.
    public init(received request: RentalRequest) {
        id = request.id
        state = .received
        customer = request.customer
        contact = request.contact
        size = request.size
        from = request.period.start
        to = request.period.end
        createdAt = Timestamp(milliseconds: request.createdAt)
        updatedAt = createdAt
        attempts = 0
        submittedBy = request.submittedBy
        submittedByName = request.submittedByName
        version = Self.version(step: 1)
    }

    /// The version of saga step `step` (1–6) after `attempts` failed attempts within it, in
    /// revision `revision`: `revision × 1,000,000 + step × 1000 + attempts`. Revision 0 is the
    /// first decision's saga; each later allocator decision on the same rental (promotion,
    /// extend, end) raises the revision and restarts at step 2, so it outranks every earlier one.
    public static func version(revision: Int = 0, step: Int64, attempts: Int = 0) -> Int64 {
        Int64(min(max(revision, 0), maximumRevision)) * 1_000_000 + step * 1000 + Int64(min(max(attempts, 0), 999))
    }

    /// The highest revision; changes beyond it are refused ("too many changes").
    public static let maximumRevision = 9_000_000

    /// This status as an index event (keys: `customer`, `submitted_by`).
    public func indexEvent() -> IndexEvent {
        IndexEvent(entity: id, version: version, state: state.rawValue, at: updatedAt.milliseconds,
                   keys: ["customer": customer, "submitted_by": String(submittedBy)], document: jsonText())
    }

    /// The status decoded from an index document.
    public init?(document: String) {
        guard let status = try? JSONDecoder().decode(RentalStatus.self, from: Data(document.utf8)) else { return nil }
        self = status
    }

    /// Canonical JSON text (sorted keys): equal statuses give equal text.
    public func jsonText() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    enum CodingKeys: String, CodingKey {
        case id, state, customer, contact, size, from, to, unit, site, reason, alternative, attempts, version
        case createdAt = "created_at", updatedAt = "updated_at", notifiedAt = "notified_at"
        case cancelRequestedAt = "cancel_requested_at", lastError = "last_error"
        case submittedBy = "submitted_by", submittedByName = "submitted_by_name"
        case revision, change, price, waitlist
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        state = try container.decode(RentalState.self, forKey: .state)
        customer = try container.decode(String.self, forKey: .customer)
        contact = try container.decode(String.self, forKey: .contact)
        size = try container.decode(String.self, forKey: .size)
        from = try container.decode(CalendarDay.self, forKey: .from)
        to = try container.decode(CalendarDay.self, forKey: .to)
        unit = try container.decodeIfPresent(String.self, forKey: .unit)
        site = try container.decodeIfPresent(String.self, forKey: .site)
        reason = try container.decodeIfPresent(String.self, forKey: .reason)
        alternative = try container.decodeIfPresent(Alternative.self, forKey: .alternative)
        createdAt = try container.decode(Timestamp.self, forKey: .createdAt)
        updatedAt = try container.decode(Timestamp.self, forKey: .updatedAt)
        notifiedAt = try container.decodeIfPresent(Timestamp.self, forKey: .notifiedAt)
        cancelRequestedAt = try container.decodeIfPresent(Timestamp.self, forKey: .cancelRequestedAt)
        attempts = try container.decode(Int.self, forKey: .attempts)
        lastError = try container.decodeIfPresent(String.self, forKey: .lastError)
        submittedBy = try container.decode(UInt32.self, forKey: .submittedBy)
        submittedByName = try container.decode(String.self, forKey: .submittedByName)
        version = try container.decode(Int64.self, forKey: .version)
        revision = try container.decodeIfPresent(Int.self, forKey: .revision) ?? 0
        change = try container.decodeIfPresent(ChangeOutcome.self, forKey: .change)
        price = try container.decodeIfPresent(RentalPrice.self, forKey: .price)
        waitlist = try container.decodeIfPresent(WaitlistPlace.self, forKey: .waitlist)
        guard (0...Self.maximumRevision).contains(revision) else {
            throw DecodingError.dataCorruptedError(forKey: .revision, in: container, debugDescription: "revision \(revision) is out of range")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(state, forKey: .state)
        try container.encode(customer, forKey: .customer)
        try container.encode(contact, forKey: .contact)
        try container.encode(size, forKey: .size)
        try container.encode(from, forKey: .from)
        try container.encode(to, forKey: .to)
        try container.encode(unit, forKey: .unit)  // null until assigned, as documented
        try container.encodeIfPresent(site, forKey: .site)
        try container.encode(reason, forKey: .reason)
        try container.encodeIfPresent(alternative, forKey: .alternative)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
        try container.encode(notifiedAt, forKey: .notifiedAt)
        try container.encodeIfPresent(cancelRequestedAt, forKey: .cancelRequestedAt)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(lastError, forKey: .lastError)
        try container.encode(submittedBy, forKey: .submittedBy)
        try container.encode(submittedByName, forKey: .submittedByName)
        try container.encode(version, forKey: .version)
        if revision != 0 { try container.encode(revision, forKey: .revision) }
        try container.encodeIfPresent(change, forKey: .change)
        try container.encodeIfPresent(price, forKey: .price)
        try container.encodeIfPresent(waitlist, forKey: .waitlist)
    }
}

/// A point in time, milliseconds since the epoch; JSON form RFC 3339 UTC,
/// `2027-01-31T09:15:02.123Z`.
public struct Timestamp: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// Milliseconds since the Unix epoch.
    public let milliseconds: Int64

    /// A timestamp.
    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    /// Now.
    public static func now() -> Timestamp { Timestamp(milliseconds: Clock.nowMilliseconds()) }

    /// The milliseconds the text form can carry: 0001-01-01T00:00:00.000Z to
    /// 9999-12-31T23:59:59.999Z.
    public static let representable: ClosedRange<Int64> = -62_135_596_800_000...253_402_300_799_999

    public var description: String {
        // Floor division without overflow, for any Int64 (a decoded request may carry any).
        var (days, inDay) = milliseconds.quotientAndRemainder(dividingBy: 86_400_000)
        if inDay < 0 { (days, inDay) = (days - 1, inDay + 86_400_000) }
        let day = CalendarDay(daysSinceEpoch: Int(days))
        let hours = inDay / 3_600_000, minutes = inDay / 60000 % 60, seconds = inDay / 1000 % 60, millis = inDay % 1000
        return "\(day)T\(zeroPadded(hours, 2)):\(zeroPadded(minutes, 2)):\(zeroPadded(seconds, 2)).\(zeroPadded(millis, 3))Z"
    }

    /// Parses the RFC 3339 form written by ``description``; nil for a time of day out of range
    /// (hours 0–23, minutes and seconds 0–59, milliseconds 0–999).
    public init?(rfc3339 text: String) {
        let parts = text.split(separator: "T")
        guard parts.count == 2, let day = CalendarDay(iso: String(parts[0])), parts[1].hasSuffix("Z") else { return nil }
        let clock = parts[1].dropLast().split(whereSeparator: { $0 == ":" || $0 == "." }).map { Int64($0) }
        guard clock.count == 4, let h = clock[0], let m = clock[1], let s = clock[2], let ms = clock[3],
              (0..<24).contains(h), (0..<60).contains(m), (0..<60).contains(s), (0..<1000).contains(ms) else { return nil }
        milliseconds = Int64(day.daysSinceEpoch) * 86_400_000 + h * 3_600_000 + m * 60000 + s * 1000 + ms
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.milliseconds < rhs.milliseconds }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = Timestamp(rfc3339: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad timestamp \(text)"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
