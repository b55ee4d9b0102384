import Foundation
import Spool

/// Many allocate commands in ONE allocation-queue item: what `spoolctl submit --batch` queues
/// (see `docs/spool-format.md`, "Batch items").
///
/// The payload is canonical JSON `{"batch": ID, "requests": [request, …], "type":
/// "allocate-batch", "version": 1}`. The item's id is the batch id; each request's id is
/// `<batch id>-<line>` with the line number of its line in the submitted file, zero-padded to
/// five digits (``requestID(batch:line:)``), so that the front door finds a queued request's
/// item from the request id alone (``batchID(ofRequest:)``). Every request is decided on its own
/// (its own `allocate:<id>` key in the allocator store): the batch is a unit of writing, not of
/// deciding. A reader refuses a batch of any other version (the item is undecodable for it).
public struct AllocationBatch: Codable, Sendable, Equatable {
    /// The `type` of a batch payload.
    public static let type = "allocate-batch"
    /// The only version this code writes and reads.
    public static let version = 1
    /// Digits of the line number in a request id: a batch has at most 99,999 lines.
    public static let lineDigits = 5

    /// The batch id: the queue item's id.
    public var batch: String
    /// The requests, in line order.
    public var requests: [RentalRequest]

    /// A batch.
    public init(batch: ItemID, requests: [RentalRequest]) {
        self.batch = batch.rawValue
        self.requests = requests
    }

    enum CodingKeys: String, CodingKey {
        case type, version, batch, requests
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard try container.decode(String.self, forKey: .type) == Self.type else {
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "not a batch")
        }
        let version = try container.decode(Int.self, forKey: .version)
        guard version == Self.version else {
            throw DecodingError.dataCorruptedError(forKey: .version, in: container, debugDescription: "batch version \(version) is not supported")
        }
        batch = try container.decode(String.self, forKey: .batch)
        guard ItemID(batch) != nil else {
            throw DecodingError.dataCorruptedError(forKey: .batch, in: container, debugDescription: "invalid batch id")
        }
        requests = try container.decode([RentalRequest].self, forKey: .requests)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.type, forKey: .type)
        try container.encode(Self.version, forKey: .version)
        try container.encode(batch, forKey: .batch)
        try container.encode(requests, forKey: .requests)
    }

    /// The queue payload (canonical JSON).
    public var payload: [UInt8] { canonicalJSON(self) }

    /// The batch a queue payload holds; nil when it is not a batch (a single command, garbage)
    /// or a batch of another version.
    public static func decode(_ payload: [UInt8]) -> AllocationBatch? {
        // Cheap test first: a single command's payload never holds the batch type.
        guard payload.count > 32, contains(payload, Array("\"type\":\"\(type)\"".utf8)) else { return nil }
        return try? JSONDecoder().decode(AllocationBatch.self, from: Data(payload))
    }

    /// The id of the request on `line` of batch `batch`.
    public static func requestID(batch: ItemID, line: Int) -> String {
        let digits = String(line)
        return batch.rawValue + "-" + String(repeating: "0", count: max(0, lineDigits - digits.count)) + digits
    }

    /// The batch item that holds request `id`, if `id` has the form of a batch request's id
    /// (`<26-character generated id>-<five digits>`); nil for every other id.
    public static func batchID(ofRequest id: String) -> ItemID? {
        let bytes = Array(id.utf8)
        guard bytes.count == 26 + 1 + lineDigits, bytes[26] == UInt8(ascii: "-"),
              bytes[27...].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return ItemID(String(decoding: bytes[..<26], as: UTF8.self))
    }

    /// The item id of a cancel of batch request `id`: `<request id>-x<8 random characters>`
    /// (unique per cancel), so that the allocator deciding the batch finds, from the queue's
    /// names alone, which of its requests a cancel waits for (see
    /// ``cancelledRequest(byItem:)``); nil (a fresh id) for any other request.
    public static func cancelItemID(forRequest id: String) -> ItemID? {
        guard batchID(ofRequest: id) != nil else { return nil }
        return ItemID(id + "-x" + ItemID.generate().rawValue.suffix(8))
    }

    /// The batch request a cancel item (``cancelItemID(forRequest:)``) is about, or nil.
    public static func cancelledRequest(byItem item: ItemID) -> String? {
        let bytes = Array(item.rawValue.utf8)
        let length = 26 + 1 + lineDigits
        guard bytes.count == length + 2 + 8, bytes[length] == UInt8(ascii: "-"), bytes[length + 1] == UInt8(ascii: "x") else { return nil }
        let request = String(decoding: bytes[..<length], as: UTF8.self)
        return batchID(ofRequest: request) == nil ? nil : request
    }

    /// The request `id` if this batch holds it.
    public func request(_ id: String) -> RentalRequest? { requests.first { $0.id == id } }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        // The type key sorts last but one in canonical JSON: search from the end.
        var start = haystack.count - needle.count
        while start >= 0 {
            if haystack[start] == needle[0], haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
            start -= 1
        }
        return false
    }
}

extension AllocationCommand {
    /// The commands an allocation-queue payload carries: one for a single command, one allocate
    /// per request for a batch; nil when it is neither (undecodable).
    public static func commands(inPayload payload: [UInt8]) -> [AllocationCommand]? {
        if let command = try? JSONDecoder().decode(AllocationCommand.self, from: Data(payload)) { return [command] }
        return AllocationBatch.decode(payload).map { $0.requests.map(AllocationCommand.allocate) }
    }
}

extension Queue {
    /// True when the allocation queue still holds request `id`: an item of its own (see
    /// ``holds(id:)``), or, for a batch request, the batch item that carries it.
    public func holds(request id: ItemID) throws(SpoolError) -> Bool {
        if try holds(id: id) { return true }
        guard let batch = AllocationBatch.batchID(ofRequest: id.rawValue) else { return false }
        return try holds(id: batch)
    }
}
