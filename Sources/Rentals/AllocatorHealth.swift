/// How the allocator is doing, as it reports in `state/allocator-health`: intake reads it to
/// decide whether the allocator "keeps failing".
public struct AllocatorHealth: Codable, Sendable, Equatable {
    /// Commands that failed in a row (0 after any success).
    public var consecutiveFailures = 0
    /// The last failure's message.
    public var lastError: String?
    /// When the counter last changed (milliseconds since the epoch).
    public var updatedAt: Int64 = 0

    /// A healthy allocator.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case consecutiveFailures = "consecutive_failures", lastError = "last_error", updatedAt = "updated_at"
    }

    /// The record's name in `state/`.
    public static let recordName = "allocator-health"
}
