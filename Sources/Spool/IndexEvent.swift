import Foundation

/// A change of one entity, as the status index projects it: the entity's whole current state at
/// `version`. Events are journaled as JSON objects with these fields (see
/// `docs/spool-format.md`), so any process, in any language, can feed the index.
///
/// Versions order the events of one entity: the index keeps, for each entity, the event with the
/// highest version (ties broken by the larger `document`), so applying events twice or out of
/// order gives the same index.
public struct IndexEvent: Codable, Sendable, Equatable {
    /// The entity's id, e.g. a request id. 1 to 128 bytes.
    public var entity: String
    /// Per-entity version; a higher version supersedes a lower one.
    public var version: Int64
    /// The entity's state after this event, e.g. `received`.
    public var state: String
    /// When the change happened (milliseconds since the epoch).
    public var at: Int64
    /// Secondary keys to look the entity up by, e.g. `["owner": "1000"]`. Replaced as a whole
    /// by a newer version.
    public var keys: [String: String]
    /// The entity's full state as JSON text, returned as is by queries.
    public var document: String

    /// An event.
    public init(entity: String, version: Int64, state: String, at: Int64, keys: [String: String] = [:], document: String = "{}") {
        self.entity = entity
        self.version = version
        self.state = state
        self.at = at
        self.keys = keys
        self.document = document
    }

    /// The JSON bytes of this event, to journal.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Encoding a struct of strings and integers cannot fail.
        return Array((try? encoder.encode(self)) ?? Data())
    }

    /// Decodes a journal record written by ``encoded()``; nil for records that are not index
    /// events (the journal may carry other records too).
    public static func decode(_ payload: [UInt8]) -> IndexEvent? {
        guard payload.first == UInt8(ascii: "{"),
              let event = IndexEventParser.parse(payload) ?? (try? JSONDecoder().decode(IndexEvent.self, from: Data(payload))),
              !event.entity.isEmpty, event.entity.utf8.count <= 128 else { return nil }
        return event
    }
}

/// One entity as the status index holds it.
public struct IndexedEntity: Sendable, Equatable, Codable {
    /// The entity's id.
    public var entity: String
    /// The version the row reflects.
    public var version: Int64
    /// The state at that version.
    public var state: String
    /// When that version happened (milliseconds since the epoch).
    public var updatedAt: Int64
    /// The secondary keys.
    public var keys: [String: String]
    /// The full state, as JSON text.
    public var document: String

    /// The row `event` makes of an entity it is the latest event of.
    public init(_ event: IndexEvent) {
        self.init(entity: event.entity, version: event.version, state: event.state, updatedAt: event.at,
                  keys: event.keys, document: event.document)
    }

    init(entity: String, version: Int64, state: String, updatedAt: Int64, keys: [String: String], document: String) {
        self.entity = entity
        self.version = version
        self.state = state
        self.updatedAt = updatedAt
        self.keys = keys
        self.document = document
    }
}
