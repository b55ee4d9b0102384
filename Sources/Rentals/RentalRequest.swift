import Spool

/// A customer's request to rent a unit of a size for a period. Immutable once accepted; its id
/// follows it through every queue item, journal record, log line, notification and status row.
public struct RentalRequest: Codable, Sendable, Equatable {
    /// The request id (a spool item id, time-ordered).
    public var id: String
    /// Who rents: an e-mail address, a phone number or a customer number.
    public var customer: String
    /// Where notifications go: an e-mail address or a phone number.
    public var contact: String
    /// The size class name.
    public var size: String
    /// The rental period.
    public var period: RentalPeriod
    /// The Unix user id that submitted it.
    public var submittedBy: UInt32
    /// The Unix user name that submitted it, for operators.
    public var submittedByName: String
    /// When it was accepted (milliseconds since the epoch).
    public var createdAt: Int64
    /// The idempotency key it was submitted with, if any.
    public var idempotencyKey: String?
    /// Only units at this site (`submit --site`); nil: any site. JSON `site`, omitted when nil.
    public var site: String?
    /// Wait for a unit instead of being rejected when none is free (`submit --waitlist`).
    /// JSON `waitlist`, omitted when false.
    public var waitlist: Bool

    /// A request.
    public init(id: String, customer: String, contact: String, size: String, period: RentalPeriod,
                submittedBy: UInt32, submittedByName: String, createdAt: Int64, idempotencyKey: String? = nil,
                site: String? = nil, waitlist: Bool = false) {
        self.id = id
        self.customer = customer
        self.contact = contact
        self.size = size
        self.period = period
        self.submittedBy = submittedBy
        self.submittedByName = submittedByName
        self.createdAt = createdAt
        self.idempotencyKey = idempotencyKey
        self.site = site
        self.waitlist = waitlist
    }

    enum CodingKeys: String, CodingKey {
        case id, customer, contact, size, period, site, waitlist
        case submittedBy = "submitted_by", submittedByName = "submitted_by_name"
        case createdAt = "created_at", idempotencyKey = "idempotency_key"
    }

    /// Encodes the request; `site` and `waitlist` only when set, so a request without them has
    /// the bytes it had before they existed.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(customer, forKey: .customer)
        try container.encode(contact, forKey: .contact)
        try container.encode(size, forKey: .size)
        try container.encode(period, forKey: .period)
        try container.encode(submittedBy, forKey: .submittedBy)
        try container.encode(submittedByName, forKey: .submittedByName)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encodeIfPresent(idempotencyKey, forKey: .idempotencyKey)
        try container.encodeIfPresent(site, forKey: .site)
        if waitlist { try container.encode(true, forKey: .waitlist) }
    }

    /// Decodes a request (a queue payload, an idempotency record); refuses an empty or inverted
    /// period and a `created_at` outside what a status document can show (years 1 to 9999).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try container.decode(String.self, forKey: .id), customer: try container.decode(String.self, forKey: .customer),
                  contact: try container.decode(String.self, forKey: .contact), size: try container.decode(String.self, forKey: .size),
                  period: try container.decode(RentalPeriod.self, forKey: .period),
                  submittedBy: try container.decode(UInt32.self, forKey: .submittedBy),
                  submittedByName: try container.decode(String.self, forKey: .submittedByName),
                  createdAt: try container.decode(Int64.self, forKey: .createdAt),
                  idempotencyKey: try container.decodeIfPresent(String.self, forKey: .idempotencyKey),
                  site: try container.decodeIfPresent(String.self, forKey: .site),
                  waitlist: try container.decodeIfPresent(Bool.self, forKey: .waitlist) ?? false)
        guard Timestamp.representable.contains(createdAt) else {
            throw DecodingError.dataCorruptedError(forKey: .createdAt, in: container, debugDescription: "created_at \(createdAt) is out of range")
        }
    }
}

/// What the allocation queue carries: one command per item, as JSON.
public enum AllocationCommand: Codable, Sendable, Equatable {
    /// Assign a unit to this request (or reject it).
    case allocate(RentalRequest)
    /// Cancel this request, releasing its unit. Carries the request so that a cancel processed
    /// before its allocate still knows whom to notify.
    case cancel(RentalRequest, requestedAt: Int64)
    /// Move an assigned rental's end later on the same unit, or refuse (payload `version: 1`).
    case extend(RentalChange)
    /// Move an assigned rental's end earlier, releasing the rest (payload `version: 1`).
    case end(RentalChange)

    /// The id of the request the command is about.
    public var requestID: String {
        switch self {
        case .allocate(let request), .cancel(let request, _): return request.id
        case .extend(let change), .end(let change): return change.request
        }
    }

    /// The request the command carries (allocate and cancel); nil for a change.
    public var request: RentalRequest? {
        switch self {
        case .allocate(let request), .cancel(let request, _): return request
        case .extend, .end: return nil
        }
    }

    enum CodingKeys: String, CodingKey {
        case type, request, change, version
        case requestedAt = "requested_at"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = try container.decode(String.self, forKey: .type)
        if type == "extend" || type == "end" {
            guard try container.decode(Int.self, forKey: .version) == 1 else {
                throw DecodingError.dataCorruptedError(forKey: .version, in: container, debugDescription: "unknown \(type) version")
            }
            let change = try container.decode(RentalChange.self, forKey: .change)
            guard change.kind.rawValue == type else {
                throw DecodingError.dataCorruptedError(forKey: .change, in: container, debugDescription: "a \(change.kind) change in a \(type) command")
            }
            self = type == "extend" ? .extend(change) : .end(change)
            return
        }
        let request = try container.decode(RentalRequest.self, forKey: .request)
        switch type {
        case "allocate": self = .allocate(request)
        case "cancel":
            let requestedAt = try container.decode(Int64.self, forKey: .requestedAt)
            guard Timestamp.representable.contains(requestedAt) else {
                throw DecodingError.dataCorruptedError(forKey: .requestedAt, in: container, debugDescription: "requested_at \(requestedAt) is out of range")
            }
            self = .cancel(request, requestedAt: requestedAt)
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown command \(other)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .allocate(let request):
            try container.encode("allocate", forKey: .type)
            try container.encode(request, forKey: .request)
        case .cancel(let request, let requestedAt):
            try container.encode("cancel", forKey: .type)
            try container.encode(request, forKey: .request)
            try container.encode(requestedAt, forKey: .requestedAt)
        case .extend(let change), .end(let change):
            try container.encode(change.kind.rawValue, forKey: .type)
            try container.encode(change, forKey: .change)
            try container.encode(1, forKey: .version)
        }
    }

    /// The key under which the allocator records the command as processed: a retried or
    /// duplicated command has the same key and is a no-op.
    public var idempotencyKey: String {
        switch self {
        case .allocate(let request): return "allocate:\(request.id)"
        case .cancel(let request, _): return "cancel:\(request.id)"
        case .extend(let change): return "extend:\(change.request):\(change.id)"
        case .end(let change): return "end:\(change.request):\(change.id)"
        }
    }
}

/// A nearest alternative offered with a rejection.
public struct Alternative: Codable, Sendable, Equatable {
    /// A unit size free for the whole requested period, if any.
    public var size: String?
    /// The earliest start date at which a unit of the requested size is free for a period of the
    /// same length, if any within the search horizon.
    public var earliestStart: CalendarDay?

    /// An alternative.
    public init(size: String? = nil, earliestStart: CalendarDay? = nil) {
        self.size = size
        self.earliestStart = earliestStart
    }

    enum CodingKeys: String, CodingKey {
        case size
        case earliestStart = "earliest_start"
    }
}

/// What the notification queue carries: a message to deliver to a customer.
public struct CustomerNotification: Codable, Sendable, Equatable {
    /// What happened.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case confirmation, rejection, cancellation
        /// No unit was free; the request is on the waiting list.
        case waitlisted
        /// The waitlisted request reached its start without a unit.
        case expiry
        /// The rental now ends later (an applied extend).
        case `extension`
        /// The extension was refused; the rental is unchanged.
        case extensionRefused = "extension-refused"
        /// The rental now ends earlier (an applied end).
        case end
    }

    /// Unique per message; a redelivery has the same id (``eventID(request:kind:revision:)``).
    public var eventId: String
    /// What happened.
    public var kind: Kind
    /// The request, as accepted.
    public var request: RentalRequest
    /// The unit assigned (confirmations; cancellations of an assigned request).
    public var unit: String?
    /// The unit's site.
    public var site: String?
    /// Why the request was rejected.
    public var reason: String?
    /// The nearest alternative, for rejections.
    public var alternative: Alternative?
    /// When the allocator decided (milliseconds since the epoch).
    public var decidedAt: Int64
    /// The status the allocator decided, when the decision is not rebuilt from ``request``
    /// alone (every kind after the first decision: promotions, changes, expiry, waitlisting);
    /// the notifier then starts from it. Omitted when nil (older notifications).
    public var status: RentalStatus?

    /// The event id of the `kind` message of `request` at `revision`: `<request>-<kind>` at
    /// revision 0, `<request>-<kind>-r<revision>` above. It names the notifier's delivery record.
    public static func eventID(request: String, kind: Kind, revision: Int) -> String {
        revision == 0 ? "\(request)-\(kind.rawValue)" : "\(request)-\(kind.rawValue)-r\(revision)"
    }

    /// A notification.
    public init(kind: Kind, request: RentalRequest, unit: String? = nil, site: String? = nil,
                reason: String? = nil, alternative: Alternative? = nil, decidedAt: Int64) {
        eventId = "\(request.id)-\(kind.rawValue)"
        self.kind = kind
        self.request = request
        self.unit = unit
        self.site = site
        self.reason = reason
        self.alternative = alternative
        self.decidedAt = decidedAt
    }

    enum CodingKeys: String, CodingKey {
        case eventId = "event_id", kind, request, unit, site, reason, alternative, status
        case decidedAt = "decided_at"
    }
}
