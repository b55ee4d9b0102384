import Foundation
import GRDB
import Logging
import Rentals
import Spool
import Synchronization

/// The allocator's decisions: assigns, rejects, cancels and completes rentals.
///
/// Each command is decided in one transaction of the ``AllocatorStore`` that also records the
/// command as processed and puts the resulting messages (the status event for the journal, the
/// notification for the customer) in the outbox. Only after the commit are they published
/// (``drainOutbox()``), and only after publishing are they removed from the outbox. A crash at
/// any point therefore neither loses nor duplicates a decision: a redelivered command finds its
/// key processed and does nothing, and a leftover outbox is published at the next drain (the
/// journal and the notifier are idempotent for a second publication).
public final class AllocationService: Sendable {
    let store: AllocatorStore
    let configuration: SystemConfiguration
    let journal: Journal
    let notifications: Queue
    let index: StatusIndex
    let logger: Logger
    /// Days added to the clock's date for the allocator's "today" (``today(now:)``): the test
    /// hook `SPOOL_TEST_DAY_OFFSET`, set by the daemon only; 0 otherwise.
    let dayOffset: Int
    private let draining = Mutex(())

    /// What a command came to.
    public enum Decision: Sendable, Equatable {
        case assigned(unit: String)
        case rejected(reason: String)
        case cancelled
        /// Already processed, or nothing to do (cancel of a rejected request, …).
        case noChange
        /// No unit was free and the request asked to wait: it is on the waiting list.
        case waitlisted
        /// An extend or end was applied; the rental's new status.
        case changed(RentalStatus)
        /// An extend or end was refused; the rental is unchanged.
        case refused(reason: String)
        /// A waitlisted request reached its start without a unit.
        case expired
    }

    /// A service over `spool`'s allocator store, journal, notification queue and index.
    ///
    /// - Throws: ``DatabaseDamage`` for a damaged store (see ``AllocatorStore/init(spool:)``);
    ///   other failures to open.
    public init(spool: Spool, configuration: SystemConfiguration, logger: Logger, dayOffset: Int = 0) throws {
        store = try AllocatorStore(spool: spool)
        self.configuration = configuration
        journal = try Journal(spool: spool)
        notifications = try spool.queue(.notifications, retry: RetryPolicy(maxAttempts: configuration.maxAttempts))
        index = try StatusIndex(spool: spool)
        self.logger = logger
        self.dayOffset = dayOffset
    }

    /// Decides `command` durably (see the type's description). Does not publish: call
    /// ``drainOutbox()`` after.
    ///
    /// - Throws: GRDB's `DatabaseError` when the store fails; nothing is decided then.
    public func decide(_ command: AllocationCommand, now: Int64 = Clock.nowMilliseconds()) throws -> Decision {
        try decide([command], now: now)[0]
    }

    /// Decides `commands`, in order, in one transaction of the store (one commit, one sync):
    /// group commit for a backlog, and a batch's requests. Each command keeps its own
    /// idempotency key, so a redelivered group, or one that repeats a command, decides nothing
    /// twice. All or nothing: when this throws, nothing of the group is decided. Does not
    /// publish: call ``drainOutbox()`` after. Returns one decision per command.
    ///
    /// - Throws: GRDB's `DatabaseError` when the store fails; ``DatabaseDamage`` for a damaged store.
    public func decide(_ commands: [AllocationCommand], now: Int64 = Clock.nowMilliseconds()) throws -> [Decision] {
        guard !commands.isEmpty else { return [] }
        return try store.write { db in try commands.map { try decide($0, now: now, in: db) } }
    }

    /// Decides `command` inside the caller's write transaction `db`.
    func decide(_ command: AllocationCommand, now: Int64, in db: Database) throws -> Decision {
        let key = command.idempotencyKey
        let processed = try db.cachedStatement(sql: "SELECT 1 FROM processed WHERE key = ?")
        if try Bool.fetchOne(processed, arguments: [key]) == true { return .noChange }
        try db.cachedStatement(sql: "INSERT INTO processed (key, at) VALUES (?, ?)").execute(arguments: [key, now])
        let existing = try Row.fetchOne(db.cachedStatement(sql: "SELECT state, status FROM rental WHERE request_id = ?"),
                                        arguments: [command.requestID])
        switch command {
        case .allocate(let request):
            // Decided before (a duplicate under another key) or cancelled before allocation.
            guard existing == nil else { return .noChange }
            return try allocate(request, now: now, db)
        case .cancel(let request, let requestedAt):
            return try cancel(request, requestedAt: requestedAt, existing: existing, now: now, db)
        case .extend(let change), .end(let change):
            return try decideChange(change, existing: existing, now: now, db)
        }
    }

    /// Journals (durably) the `received` status of an allocate command whose request the index
    /// does not know: a restricted `spoolctl submit` journals nothing (it may be stopped holding
    /// the journal's lock; see `IntakeService`), so the allocator records the fact when it takes
    /// the command, before deciding it, and a request never decided (retried, dead-lettered) is
    /// still in the journal. Idempotent: `received` is the saga's lowest version, so the index's
    /// version rule never lets it regress a later state, and a second copy changes nothing.
    ///
    /// - Throws: ``SpoolError`` when the journal cannot be appended to.
    public func journalReceived(_ command: AllocationCommand) throws {
        try journalReceived([command])
    }

    /// ``journalReceived(_:)-(AllocationCommand)`` for several commands, in one durable append.
    ///
    /// A request the store has decided (its row, or its key: a tombstone of the retention
    /// pruning) is never journaled `received` again: the index lacks it because compaction
    /// dropped it, and a `received` row would bring back a request retention removed, one that
    /// `reconcile` would then queue again.
    public func journalReceived(_ commands: [AllocationCommand]) throws {
        let unknown = commands.compactMap { command -> RentalRequest? in
            guard case .allocate(let request) = command, (try? index.entity(request.id)) == nil else { return nil }
            return request
        }
        guard !unknown.isEmpty else { return }
        let undecided = try store.read { db in
            try unknown.filter { request in
                try Bool.fetchOne(db, sql: "SELECT 1 FROM rental WHERE request_id = ?", arguments: [request.id]) != true
                    && (try Bool.fetchOne(db, sql: "SELECT 1 FROM processed WHERE key = ?", arguments: ["allocate:\(request.id)"]) != true)
            }
        }
        let records = undecided.map { RentalStatus(journaledReceived: $0).indexEvent().encoded() }
        guard !records.isEmpty else { return }
        try journal.append(records, durability: .durable)
    }

    private func allocate(_ request: RentalRequest, now: Int64, _ db: Database) throws -> Decision {
        var status = RentalStatus(received: request)
        status.updatedAt = Timestamp(milliseconds: now)
        status.version = RentalStatus.version(step: 2)
        if let unit = try Availability.bestUnit(size: request.size, period: request.period, site: request.site, db) {
            let quote = try PriceBook.quotation(size: request.size, site: unit.site, period: request.period, currency: configuration.currency, db)
            if case .unpriceable(let reason) = quote { return try refuseUnpriceable(request, status: status, reason: reason, now: now, db) }
            status.state = .assigned
            status.unit = unit.id
            status.site = unit.site
            status.price = quote.price
            try insertRental(request, unit: unit.id, status: status, now: now, db)
            try PriceBook.record(status.price, request: request.id, db)
            try enqueueOutbox(status, Self.confirmation(status, request: request, decidedAt: now), db)
            return .assigned(unit: unit.id)
        }
        var alternative = Alternative()
        for size in BestFit.alternativeSizes(to: request.size, in: configuration.sizes)
        where try Availability.hasFreeUnit(size: size, period: request.period, site: request.site, db) {
            alternative.size = size
            break
        }
        alternative.earliestStart = try Availability.earliestStart(size: request.size, period: request.period, site: request.site, db)
        var reason = "no \(request.size) unit is free for the whole period \(request.period.start) to \(request.period.end)"
        var offers: [String] = []
        if let size = alternative.size { offers.append("size \(size) is free for that period") }
        if let start = alternative.earliestStart { offers.append("size \(request.size) is free from \(start) for the same length") }
        if !offers.isEmpty { reason += "; nearest alternatives: " + offers.joined(separator: "; ") }
        if request.waitlist {
            if let decision = try waitlist(request, status: &status, reason: reason, now: now, db) { return decision }
            reason += "; \(Self.tooLateForTheWaitlist)"
        }
        status.state = .rejected
        status.reason = reason
        status.alternative = offers.isEmpty ? nil : alternative
        try insertRental(request, unit: nil, status: status, now: now, db)
        try enqueueOutbox(status, CustomerNotification(kind: .rejection, request: request, reason: reason, alternative: status.alternative, decidedAt: now), db)
        return .rejected(reason: reason)
    }

    private func cancel(_ request: RentalRequest, requestedAt: Int64, existing: Row?, now: Int64, _ db: Database) throws -> Decision {
        var status: RentalStatus
        if let existing {
            if try existing.decode(String.self, forColumn: "state") == "waitlisted" { return try cancelWaitlisted(request, requestedAt: requestedAt, now: now, db) }
            guard try existing.decode(String.self, forColumn: "state") == "assigned",
                  let stored = RentalStatus(document: try existing.decode(String.self, forColumn: "status")) else { return .noChange }
            status = stored
        } else {
            status = RentalStatus(received: request)  // cancelled before allocation: a tombstone
            try insertRental(request, unit: nil, status: status, now: now, db)
        }
        status.state = .cancelled
        status.cancelRequestedAt = Timestamp(milliseconds: requestedAt)
        status.updatedAt = Timestamp(milliseconds: now)
        status.version = RentalStatus.version(revision: status.revision, step: 4)
        status.attempts = 0
        status.lastError = nil
        try db.execute(sql: "UPDATE rental SET state = 'cancelled', status = ?, updated_at = ? WHERE request_id = ?",
                       arguments: [status.jsonText(), now, request.id])
        try enqueueOutbox(status, cancellation(of: status, request: request, now: now), db)
        try promoteAfterRelease(unit: status.unit, now: now, db)
        return .cancelled
    }

    func insertRental(_ request: RentalRequest, unit: String?, status: RentalStatus, now: Int64, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO rental (request_id, state, unit_id, start_day, end_day, status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [request.id, status.state == .assigned ? "assigned" : status.state.rawValue, unit,
                             request.period.start.daysSinceEpoch, request.period.end.daysSinceEpoch, status.jsonText(), now])
    }

    func enqueueOutbox(_ status: RentalStatus, _ notification: CustomerNotification, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO outbox (kind, payload) VALUES ('journal', ?)", arguments: [Data(status.indexEvent().encoded())])
        try db.execute(sql: "INSERT INTO outbox (kind, item_id, payload) VALUES ('notify', ?, ?)",
                       arguments: [notification.eventId, Data(canonicalJSON(notification))])
    }

    /// Publishes the outbox: journal records (one durable group append), then notifications
    /// (durable enqueues), then removes what was published. Returns how many messages.
    @discardableResult
    public func drainOutbox() throws -> Int {
        try draining.withLock { _ in
            var published = 0
            while true {
                let rows = try store.read { db in
                    try Row.fetchAll(db, sql: "SELECT seq, kind, item_id, payload FROM outbox ORDER BY seq LIMIT 500")
                }
                guard let last = rows.last else { break }
                // Throwing decodes: a damaged value is reported as damage, never a trap.
                let kinds = try rows.map { try $0.decode(String.self, forColumn: "kind") }
                let payloads = try rows.map { Array(try $0.decode(Data.self, forColumn: "payload")) }
                let records = rows.indices.filter { kinds[$0] == "journal" }.map { payloads[$0] }
                if !records.isEmpty { try journal.append(records, durability: .durable) }
                for index in rows.indices where kinds[index] == "notify" {
                    guard let id = ItemID(try rows[index].decode(String.self, forColumn: "item_id")) else { continue }
                    try notifications.enqueue(payloads[index], id: id)
                }
                let through = try last.decode(Int64.self, forColumn: "seq")
                try store.write { db in try db.execute(sql: "DELETE FROM outbox WHERE seq <= ?", arguments: [through]) }
                published += rows.count
            }
            if published > 0 {
                // Best effort: the journal holds the decision; the index catches up on a later tick.
                do { try index.catchUp(from: journal) } catch {
                    logger.warning("cannot project into the status index", metadata: ["error": "\(error)"])
                }
            }
            return published
        }
    }
}
