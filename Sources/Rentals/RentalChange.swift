/// A change to an assigned rental, as the allocation queue carries it (`spoolctl extend`,
/// `spoolctl end`).
///
/// Each invocation gets its own ``id`` (a spool item id); the allocator records the command as
/// processed under `extend:<request>:<id>` / `end:<request>:<id>`, so a redelivered change is
/// decided once. A change whose ``day`` already is the rental's end decides nothing.
public struct RentalChange: Codable, Sendable, Equatable {
    /// What the change asks for.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Move the end later, keeping the unit (refused when the unit is taken).
        case extend
        /// Move the end earlier, releasing the rest of the period.
        case end
    }

    /// The spool item id of the change (26 characters), unique per invocation.
    public var id: String
    /// What it asks for.
    public var kind: Kind
    /// The rental's request id.
    public var request: String
    /// The new end of the period (the day after the last day), for both kinds.
    public var day: CalendarDay
    /// When it was asked for (milliseconds since the epoch).
    public var requestedAt: Int64
    /// The Unix user id that asked.
    public var requestedBy: UInt32
    /// That user's name.
    public var requestedByName: String

    /// A change.
    public init(id: String, kind: Kind, request: String, day: CalendarDay, requestedAt: Int64,
                requestedBy: UInt32, requestedByName: String) {
        self.id = id
        self.kind = kind
        self.request = request
        self.day = day
        self.requestedAt = requestedAt
        self.requestedBy = requestedBy
        self.requestedByName = requestedByName
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, request, day
        case requestedAt = "requested_at", requestedBy = "requested_by", requestedByName = "requested_by_name"
    }

    /// Decodes a change; refuses a `requested_at` outside what a status document can show.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try container.decode(String.self, forKey: .id), kind: try container.decode(Kind.self, forKey: .kind),
                  request: try container.decode(String.self, forKey: .request), day: try container.decode(CalendarDay.self, forKey: .day),
                  requestedAt: try container.decode(Int64.self, forKey: .requestedAt),
                  requestedBy: try container.decode(UInt32.self, forKey: .requestedBy),
                  requestedByName: try container.decode(String.self, forKey: .requestedByName))
        guard Timestamp.representable.contains(requestedAt) else {
            throw DecodingError.dataCorruptedError(forKey: .requestedAt, in: container, debugDescription: "requested_at \(requestedAt) is out of range")
        }
    }
}

/// How the allocator decided the last change of a rental (status key `change`).
public struct ChangeOutcome: Codable, Sendable, Equatable {
    /// The change's id (``RentalChange/id``).
    public var id: String
    /// What was asked for.
    public var kind: RentalChange.Kind
    /// The end asked for.
    public var day: CalendarDay
    /// Whether the rental now ends on ``day``.
    public var applied: Bool
    /// Why it was refused (nil when applied).
    public var reason: String?
    /// The end before the change.
    public var previousTo: CalendarDay
    /// When the customer was told of the outcome.
    public var notifiedAt: Timestamp?

    /// An outcome.
    public init(id: String, kind: RentalChange.Kind, day: CalendarDay, applied: Bool, reason: String? = nil,
                previousTo: CalendarDay, notifiedAt: Timestamp? = nil) {
        self.id = id
        self.kind = kind
        self.day = day
        self.applied = applied
        self.reason = reason
        self.previousTo = previousTo
        self.notifiedAt = notifiedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, day, applied, reason
        case previousTo = "previous_to", notifiedAt = "notified_at"
    }
}
