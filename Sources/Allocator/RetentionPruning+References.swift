import Foundation
import GRDB
import Rentals
import Spool

/// Which of a set of request ids the outbox and the queues still mention: the requests whose
/// records a command or a notification may still need when it comes back (``RetentionPruning``).
///
/// An item mentions a request when the request's id is a token (a run of `[A-Za-z0-9_-]`, the
/// characters of ids) of its file, header and payload (a single command, a batch of requests,
/// a cancel, a notification: each carries the request's id as a JSON string, never escaped),
/// or is named by the item's id (the request's own, a batch's whose id starts its requests',
/// a batch request's cancel, `<request>-<kind>[-r<revision>]` of a notification): so a file that does not
/// decode, or cannot be read, is judged by what it may still become to a consumer that can
/// read it, not ignored.
struct ReferenceScan {
    let candidates: Set<String>
    /// Candidates that are batch requests (`<batch>-NNNNN`), by batch id.
    let byBatch: [String: [String]]

    init(candidates: Set<String>) {
        self.candidates = candidates
        var byBatch: [String: [String]] = [:]
        for id in candidates {
            if let batch = AllocationBatch.batchID(ofRequest: id) { byBatch[batch.rawValue, default: []].append(id) }
        }
        self.byBatch = byBatch
    }

    /// The candidates mentioned by the outbox (read first: the allocator removes an outbox row
    /// only after publishing it to the journal and the notification queue) and by the entries of
    /// `queues` in any state, each queue listed twice: an item that moves while a listing runs
    /// (a retry back to a bucket listed before, a `dead retry`) is seen by the other listing
    /// unless it moves backwards in both, and an item missed that way is one a consumer is
    /// handling right now, which the tombstones cover (docs/reliability.md).
    ///
    /// `store` nil: a spool without an allocator store (no outbox).
    ///
    /// - Throws: store and ``SpoolError`` failures (nothing may be pruned then).
    func mentions(outbox store: AllocatorStore?, queues: [Queue]) throws -> Set<String> {
        guard !candidates.isEmpty else { return [] }
        var found = Set<String>()
        var rows: [Row] = []
        if let store { rows = try store.read { db in try Row.fetchAll(db, sql: "SELECT item_id, payload FROM outbox") } }
        for row in rows {
            found.formUnion(tokens(in: Array(try row.decode(Data.self, forColumn: "payload"))))
            if let item: String = try row.decode(String?.self, forColumn: "item_id") { found.formUnion(named(item)) }
        }
        for queue in queues {
            var read = Set<ItemID>()  // items are immutable: one file read per id
            for _ in 0..<2 {
                for entry in try queue.entries() {
                    found.formUnion(named(entry.id.rawValue))
                    guard !read.contains(entry.id) else { continue }
                    do {
                        guard let bytes = try queue.contents(of: entry) else { continue }  // moved: the other listing
                        found.formUnion(tokens(in: bytes))
                        read.insert(entry.id)
                    } catch .unsafePath, .tooLarge {
                        read.insert(entry.id)  // no consumer reads it either: judged by its name
                    }
                }
            }
        }
        return found
    }

    /// The candidates an item id names.
    func named(_ item: String) -> Set<String> {
        var names: Set<String> = [item]
        if let request = Pruner.request(ofEventID: item) { names.insert(request) }
        if let id = ItemID(item), let request = AllocationBatch.cancelledRequest(byItem: id) { names.insert(request) }
        var found = names.intersection(candidates)
        if let members = byBatch[item] { found.formUnion(members) }
        return found
    }

    /// The candidates among the tokens of `bytes`.
    func tokens(in bytes: [UInt8]) -> Set<String> {
        var found = Set<String>()
        var start: Int?
        func isIDByte(_ byte: UInt8) -> Bool {
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D || byte == 0x5F
        }
        for index in 0...bytes.count {
            if index < bytes.count, isIDByte(bytes[index]) {
                if start == nil { start = index }
                continue
            }
            guard let from = start else { continue }
            start = nil
            guard index - from <= 64 else { continue }
            let token = String(decoding: bytes[from..<index], as: UTF8.self)
            found.formUnion(named(token))
        }
        return found
    }
}
