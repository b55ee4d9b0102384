/// A waitlisted request's place in its waiting list (status key `waitlist`).
public struct WaitlistPlace: Codable, Sendable, Equatable {
    /// When it joined the list; the list is served oldest first.
    public var since: Timestamp
    /// Its 1-based position among the waiting requests of its size (and site) when the status was
    /// written; nil when not computed.
    public var position: Int?

    /// A place.
    public init(since: Timestamp, position: Int? = nil) {
        self.since = since
        self.position = position
    }
}
