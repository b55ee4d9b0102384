import Foundation
import Rentals
import Spool

/// What `submit --batch` did with one line.
public struct BatchLineResult: Sendable, Equatable {
    /// The line number in the batch (1-based).
    public let line: Int
    /// Accepted (queued now, or already by an earlier submit with the same key), or refused.
    public let outcome: Outcome

    /// A line's outcome.
    public enum Outcome: Sendable, Equatable {
        /// Queued (`created`), or the request an earlier submit with the same idempotency key
        /// queued (`created` false): its id either way.
        case accepted(id: String, created: Bool)
        /// Not queued: the line's one-line error (its code as for a single submit).
        case refused(IntakeError)
    }
}

/// The result of a batch submit: one result per request line, in line order.
public struct BatchReceipt: Sendable, Equatable {
    /// The batch item's id; nil when nothing new was queued as a batch (every line refused, or
    /// already submitted).
    public let batch: String?
    /// One per request line.
    public let lines: [BatchLineResult]

    /// Lines refused.
    public var refused: Int { lines.filter { if case .refused = $0.outcome { true } else { false } }.count }
}

extension IntakeService {
    /// Validates every line of a batch (see ``BatchFile``) and durably queues the valid ones
    /// together as ONE allocation-queue item (``AllocationBatch``); returns each line's result
    /// once the item is safe.
    ///
    /// Each request gets its own id (`<batch id>-<line>`), its own validation and, optionally,
    /// its own idempotency key, with the same rules as a single ``submit(_:caller:)``: a key used
    /// before (by this user, in an earlier submit or an earlier line of this batch) with the
    /// same data returns that request's id (`created` false), with other data refuses the line.
    /// A request whose key an earlier submit recorded but that never reached the queue (that
    /// submit died) is queued now under its recorded id, as an item of its own.
    ///
    /// Writes, in this order, as a single submit does: the key records (durable, one per keyed
    /// line), the one batch item (one file, one `fsync`, one directory `fsync`), then, unless
    /// restricted, the `received` events of all its requests in one durable journal append and
    /// one index transaction (best effort, as for a single submit). A line's refusal does not
    /// stop the others.
    ///
    /// - Throws: ``IntakeError`` for the whole batch, with nothing queued: 64/65 when it is empty
    ///   or over the limits (see ``BatchFile/parse(_:)``), 75 while the breaker is open or the
    ///   disk is full, 74/77 for I/O and permission failures.
    public func submitBatch(_ bytes: [UInt8], caller: Caller) throws(IntakeError) -> BatchReceipt {
        let lines = try BatchFile.parse(bytes)
        let batchID = ItemID.generate()
        let now = Clock.nowMilliseconds()
        var outcomes: [BatchLineResult.Outcome] = []
        outcomes.reserveCapacity(lines.count)
        var fresh: [(slot: Int, request: RentalRequest)] = []  // new requests for the batch item
        var recovered: [RentalRequest] = []  // recorded by a submit that died before queueing
        var byKey: [String: RentalRequest] = [:]  // the request each key names so far
        for line in lines {
            let slot = outcomes.count
            do {
                let form = try line.form.get()
                let fields = try form.validate(configuration)
                let request = RentalRequest(id: AllocationBatch.requestID(batch: batchID, line: line.number), customer: fields.customer,
                                            contact: fields.contact, size: fields.size.name, period: fields.period,
                                            submittedBy: caller.uid, submittedByName: caller.name, createdAt: now,
                                            idempotencyKey: form.idempotencyKey, site: form.site, waitlist: form.waitlist)
                guard let key = form.idempotencyKey else {
                    fresh.append((slot, request))
                    outcomes.append(.accepted(id: request.id, created: true))
                    continue
                }
                if let first = byKey[key] {
                    try Self.requireSameRequest(first, request, key: key)
                    outcomes.append(.accepted(id: first.id, created: false))
                } else if let earlier = try recordedRequest(key: key, caller: caller) {
                    try Self.requireSameRequest(earlier, request, key: key)
                    byKey[key] = earlier
                    let known = try isKnown(earlier.id)
                    if !known { recovered.append(earlier) }
                    outcomes.append(.accepted(id: earlier.id, created: !known))
                } else {
                    byKey[key] = request
                    fresh.append((slot, request))
                    outcomes.append(.accepted(id: request.id, created: true))
                }
            } catch where error.code == .badData || error.code == .usage {
                outcomes.append(.refused(IntakeError(error.code, Self.namingFields(error.message))))
            }
        }
        if !fresh.isEmpty {
            try admission.admit()
            fresh = try recordKeys(fresh, caller: caller, outcomes: &outcomes, recovered: &recovered)
        }
        // The recovered requests first: should one fail, nothing of this batch is queued yet.
        for request in recovered {
            do { try allocation.enqueue(canonicalJSON(AllocationCommand.allocate(request)), id: ItemID(request.id)) } catch {
                throw IntakeError(error, doing: "queueing request \(request.id)")
            }
        }
        if !fresh.isEmpty {
            do { try allocation.enqueue(AllocationBatch(batch: batchID, requests: fresh.map(\.request)).payload, id: batchID) } catch {
                throw IntakeError(error, doing: "queueing the batch")
            }
        }
        let queued = fresh.map(\.request) + recovered
        if !queued.isEmpty {
            logger.info("batch accepted", metadata: ["batch": "\(fresh.isEmpty ? "-" : batchID.rawValue)", "requests": "\(queued.count)",
                                                     "lines": "\(lines.count)", "by": "\(caller.name)"])
            recordReceived(queued)
        }
        return BatchReceipt(batch: fresh.isEmpty ? nil : batchID.rawValue,
                            lines: zip(lines, outcomes).map { BatchLineResult(line: $0.number, outcome: $1) })
    }

    /// A single submit's message about its options (`--to`), about a line's fields (`to`).
    static func namingFields(_ message: String) -> String {
        var result = message
        for (option, field) in [("--idempotency-key", "idempotency_key"), ("--from", "from"), ("--to", "to"), ("--months", "months")] {
            if result.hasPrefix(option + " ") { result = field + result.dropFirst(option.count) }
            for after in [" ", ","] { result = result.replacingOccurrences(of: " " + option + after, with: " " + field + after) }
        }
        return result.replacingOccurrences(of: "with to DATE or months N", with: "with the field to (a date) or months (a number)")
    }

    /// Records the idempotency key of each keyed request of `fresh` (durably, before the batch
    /// is queued, as a single submit does) and returns the requests still to queue. A key that
    /// a concurrent submit recorded first is handled as ``submit(_:caller:)`` does: its request
    /// is returned if queued, queued here if not (as `recovered`), and a different request under
    /// it refuses the line.
    private func recordKeys(_ fresh: [(slot: Int, request: RentalRequest)], caller: Caller,
                            outcomes: inout [BatchLineResult.Outcome], recovered: inout [RentalRequest]) throws(IntakeError)
        -> [(slot: Int, request: RentalRequest)] {
        var kept: [(slot: Int, request: RentalRequest)] = []
        kept.reserveCapacity(fresh.count)
        var replaced: [String: BatchLineResult.Outcome] = [:]  // fresh id → what its line came to
        for entry in fresh {
            guard let key = entry.request.idempotencyKey else {
                kept.append(entry)
                continue
            }
            let existing: [UInt8]?
            do { existing = try keys.createOnce(keyName(key, caller), Self.keyRecord(entry.request)) } catch {
                throw IntakeError(error, doing: "recording the idempotency key")
            }
            guard let existing else {
                kept.append(entry)
                continue
            }
            do {
                let earlier = try decodedRecord(existing, key: key, caller: caller)
                try Self.requireSameRequest(earlier, entry.request, key: key)
                if try !isKnown(earlier.id) { recovered.append(earlier) }
                outcomes[entry.slot] = .accepted(id: earlier.id, created: false)
            } catch where error.code == .badData {
                outcomes[entry.slot] = .refused(error)
            }
            replaced[entry.request.id] = outcomes[entry.slot]
        }
        // Later lines of this batch with the same key named the request that was not queued.
        if !replaced.isEmpty {
            for slot in outcomes.indices {
                guard case .accepted(let id, false) = outcomes[slot], let outcome = replaced[id] else { continue }
                if case .accepted(let earlier, _) = outcome { outcomes[slot] = .accepted(id: earlier, created: false) } else { outcomes[slot] = outcome }
            }
        }
        return kept
    }

    /// Journals the `received` status of `requests` in ONE durable append and writes them to
    /// the index in one transaction; best effort and skipped when restricted, as ``record(_:)``.
    private func recordReceived(_ requests: [RentalRequest]) {
        guard !restricted else { return }
        let events = requests.map { RentalStatus(journaledReceived: $0).indexEvent() }
        do {
            try journal.append(events.map { $0.encoded() }, durability: .durable)
        } catch {
            logger.warning("cannot journal the batch's statuses", metadata: ["requests": "\(requests.count)", "error": "\(error)"])
        }
        do {
            try index.apply(events)
        } catch {
            logger.warning("cannot update status index", metadata: ["requests": "\(requests.count)", "error": "\(error)"])
        }
    }

    /// The `received` status of request `id` while its batch item is queued (waiting or
    /// claimed); nil when `id` is no batch request's id or its batch is not queued.
    func queuedBatchMember(_ id: String) throws(IntakeError) -> RentalStatus? {
        guard let batch = AllocationBatch.batchID(ofRequest: id) else { return nil }
        do {
            guard let payload = try allocation.peek(id: batch), let request = AllocationBatch.decode(payload)?.request(id) else { return nil }
            return RentalStatus(received: request)
        } catch {
            throw IntakeError(error, doing: "looking for request \(id) in the spool")
        }
    }
}
