import Foundation
import Logging
import Rentals
import Spool

/// The rental request service behind `spoolctl submit`, `cancel` and `status`: validation,
/// identity, admission control, durable queueing and journaling.
///
/// A submit is acknowledged only after the allocate command is durably in the allocation queue
/// (non-functional requirement 1); the allocator need not run (requirement 2). The `received`
/// status is journaled and written to the index at once, so a status right after a submit shows
/// the request (read-your-writes); for a request the index does not know yet, status reads the
/// journal past the index's position, then falls back to the queue. Status and list never write
/// the index (they read it through a read-only connection; the daemons catch it up), unless it
/// is missing or unusable and must be rebuilt.
///
/// In restricted mode (a setgid `spoolctl` run by an ordinary user, who may stop it with
/// `SIGSTOP` at any point), the service holds no lock that the daemons or other users' submits
/// wait for without bound (as Postfix's `postdrop` holds nothing `pickup` needs): submit and
/// cancel neither append to the journal nor write the index (the queue item, renamed into the
/// allocation queue, carries everything, and the allocator journals `received` when it takes
/// the item); status, list and wait read the index through read-only connections, never catch
/// it up or rebuild it, and fall back to the queue and the journal; the breaker's lock is
/// waited for at most a second (see ``AdmissionControl/admit(now:)``).
///
/// The index is a disposable projection: submitting never depends on it (its row is written
/// best-effort, and caught up later), a damaged or missing index is rebuilt at first use (see
/// ``StatusIndex``), and when it cannot be used at all (no permission, say) `status`, `list` and
/// `cancel` answer from the journal itself and log that they did.
public final class IntakeService: Sendable {
    /// The configuration in effect.
    public let configuration: SystemConfiguration
    /// The spool.
    public let spool: Spool
    let allocation: Queue
    let journal: Journal
    let index: StatusIndex
    let keys: RecordDirectory
    let admission: AdmissionControl
    let logger: Logger
    /// Restricted mode (see the type's description).
    let restricted: Bool
    /// The level of "answering from the journal": a restricted process does not repair the
    /// index (the daemons do, and report it), so its caller gets no warning they cannot act on.
    private var fallbackLevel: Logger.Level { restricted ? .info : .warning }

    /// Opens the spool named by `configuration`, creating its layout if needed. Every
    /// file-system call of the spool goes through `calls` (tests record or fail them).
    ///
    /// - Throws: ``IntakeError`` with exit 73 when the spool cannot be created, 77 when access
    ///   is denied, 74 for other I/O errors.
    public init(configuration: SystemConfiguration, logger: Logger = Logger(label: "intake"),
                restricted: Bool = ProcessRights.isRestricted, calls: FileSystemCalls = .live) throws(IntakeError) {
        self.configuration = configuration
        self.logger = logger
        self.restricted = restricted
        do {
            var spoolConfiguration = Spool.Configuration()
            spoolConfiguration.calls = calls
            spool = try Spool(path: configuration.spoolRoot, create: true, configuration: spoolConfiguration, logger: logger)
            let retry = RetryPolicy(maxAttempts: configuration.maxAttempts)
            allocation = try spool.queue(.allocation, retry: retry)
            journal = try Journal(spool: spool)
            keys = try RecordDirectory(spool: spool, path: "intake/keys")
            admission = AdmissionControl(configuration: configuration, queue: allocation,
                                         records: try RecordDirectory(spool: spool, path: "state"))
            index = try StatusIndex(spool: spool, journal: journal, readOnly: restricted)
        } catch {
            // Everything here throws SpoolError: the status index is opened at first use.
            if case .system(let operation, _, _) = error, operation.hasPrefix("create"), !error.isNoSpace {
                throw IntakeError(.cannotCreate, "cannot create the spool at \(configuration.spoolRoot): \(error)")
            }
            throw IntakeError(error, doing: "opening the spool at \(configuration.spoolRoot)")
        }
    }

    /// The result of a submit.
    public struct Submission: Sendable, Equatable {
        /// The request id.
        public let id: String
        /// False when an earlier submit with the same idempotency key is returned.
        public let created: Bool
    }

    /// Validates and durably queues a rental request; returns its id once it is safe.
    ///
    /// With an idempotency key, a repeated submit by the same user returns the first request's
    /// id and creates nothing (even if the first submit crashed halfway: the request it recorded
    /// is queued then).
    ///
    /// - Throws: ``IntakeError``: 64/65 for bad input (nothing is written), 75 while the breaker
    ///   is open or the disk is full, 74/77 for I/O and permission failures.
    public func submit(_ form: RentalForm, caller: Caller) throws(IntakeError) -> Submission {
        let fields = try form.validate(configuration)
        var created = true
        var requeued = false  // the request an idempotency key recorded, queued again
        var request = RentalRequest(id: ItemID.generate().rawValue, customer: fields.customer, contact: fields.contact,
                                    size: fields.size.name, period: fields.period, submittedBy: caller.uid,
                                    submittedByName: caller.name, createdAt: Clock.nowMilliseconds(),
                                    idempotencyKey: form.idempotencyKey, site: form.site, waitlist: form.waitlist)
        if let key = form.idempotencyKey, let earlier = try recordedRequest(key: key, caller: caller) {
            try Self.requireSameRequest(earlier, request, key: key)
            if try isKnown(earlier.id) { return Submission(id: earlier.id, created: false) }
            request = earlier  // recorded, then crashed before queueing: queue it now
            requeued = true
        } else {
            try admission.admit()
            if let key = form.idempotencyKey {
                let existing: [UInt8]?
                do { existing = try keys.createOnce(keyName(key, caller), Self.keyRecord(request)) } catch {
                    throw IntakeError(error, doing: "recording the idempotency key")
                }
                if let existing {
                    // A concurrent submit recorded the key first. Its request is returned only
                    // once it is queued: that submit may still fail (or die) before queueing,
                    // and this one must not acknowledge a request that is nowhere. Otherwise it
                    // is queued here, as a retry would (the allocator decides an id once).
                    let earlier = try decodedRecord(existing, key: key, caller: caller)
                    try Self.requireSameRequest(earlier, request, key: key)
                    if try isKnown(earlier.id) { return Submission(id: earlier.id, created: false) }
                    request = earlier
                    created = false
                    requeued = true
                }
            }
        }
        do {
            try allocation.enqueue(canonicalJSON(AllocationCommand.allocate(request)), id: ItemID(request.id))
        } catch {
            throw IntakeError(error, doing: "queueing the request")
        }
        logger.info("request accepted", metadata: ["request": "\(request.id)", "customer": "\(request.customer)",
                                                   "size": "\(request.size)", "period": "\(request.period)"])
        // A recorded request queued again is journaled `received` by the allocator, which knows
        // whether it was decided: the index may lack it because retention dropped it (issue 10),
        // and a `received` row journaled here would bring it back for good.
        if !requeued { record(RentalStatus(journaledReceived: request)) }
        return Submission(id: request.id, created: created)
    }

    /// The outcome of a cancel.
    public enum Cancellation: Sendable, Equatable {
        /// Queued for the allocator, which releases the unit and notifies the customer.
        case requested
        /// Nothing to do; the message says why (already cancelled, rejected, ended).
        case nothingToDo(String)
    }

    /// Requests cancellation of request `id`. Cancelling twice is harmless. A request the
    /// allocator has not started on is withdrawn from its queue, so it is never assigned.
    ///
    /// - Throws: ``IntakeError``: 77 for another user's request or (to a caller who is not an
    ///   operator) an unknown id, 66 for an unknown id asked for by an operator, 74/75 for I/O
    ///   failures.
    public func cancel(_ id: String, caller: Caller) throws(IntakeError) -> Cancellation {
        var current = try status(id, caller: caller)
        switch current.state {
        case .rejected: return .nothingToDo("request \(id) was rejected; there is nothing to cancel")
        case .cancelled: return .nothingToDo("request \(id) is already cancelled")
        case .completed: return .nothingToDo("request \(id) has completed; its rental period has ended")
        case .expired: return .nothingToDo("request \(id) expired on the waiting list; there is nothing to cancel")
        case .received, .assigned, .confirmed, .waitlisted: break
        }
        let now = Clock.nowMilliseconds()
        // Not yet allocated: take the allocate command out of the queue, so that the allocator
        // sees only the cancel and never assigns a unit. If the allocator holds it already,
        // the cancel follows it and releases the unit.
        var withdrawn: ClaimedItem?
        if current.state == .received, let itemID = ItemID(id) {
            do { withdrawn = try allocation.claim(id: itemID, lease: .seconds(60)) } catch {
                throw IntakeError(error, doing: "withdrawing the queued request")
            }
        }
        let request = RentalRequest(id: current.id, customer: current.customer, contact: current.contact, size: current.size,
                                    period: RentalPeriod(start: current.from, end: current.to)!, submittedBy: current.submittedBy,
                                    submittedByName: current.submittedByName, createdAt: current.createdAt.milliseconds)
        do {
            try allocation.enqueue(canonicalJSON(AllocationCommand.cancel(request, requestedAt: now)),
                                   id: AllocationBatch.cancelItemID(forRequest: id))  // a batch's request: see AllocationBatch
        } catch {
            if let withdrawn { try? allocation.release(withdrawn) }
            throw IntakeError(error, doing: "queueing the cancel")
        }
        if let withdrawn {
            // The cancel is durable; the allocate goes. Should this fail, the allocate returns
            // when its lease expires and is decided before or after the cancel: both are safe.
            try? allocation.acknowledge(withdrawn)
        }
        logger.info("cancel requested", metadata: ["request": "\(id)", "by": "\(caller.name)"])
        current.cancelRequestedAt = Timestamp(milliseconds: now)
        current.updatedAt = Timestamp(milliseconds: now)
        current.version += 1
        record(current)
        return .requested
    }

    /// The status of request `id`.
    ///
    /// - Throws: ``IntakeError``: 77 if it is another user's, or (for a caller who is not an
    ///   operator) if there is no such request; 66 if an operator asks for an unknown id.
    public func status(_ id: String, caller: Caller) throws(IntakeError) -> RentalStatus {
        guard ItemID(id) != nil else { throw IntakeError(.badData, "\(id.echoed) is not a request id") }
        var found: RentalStatus?
        do {
            if let row = try index.entity(id) {
                found = RentalStatus(document: row.document)
            } else if let row = try index.unprojected(id, in: journal) {
                found = RentalStatus(document: row.document)  // journaled, not yet projected: read, never written here
            }
        } catch {
            // Never "no such request" because the index is unusable: ask the journal itself.
            logger.log(level: fallbackLevel, "status index unusable; answering from the journal", metadata: ["request": "\(id)", "error": "\(error)"])
            do {
                found = try StatusIndex.scan(journal, entity: id)[id].flatMap { RentalStatus(document: $0.document) }
            } catch {
                throw IntakeError(.ioError, "cannot read request \(id): the status index is unusable and the journal unreadable: \(error)")
            }
        }
        if found == nil { found = try queuedStatus(id) }
        if found == nil, restricted {
            // Not in the index (not caught up: a restricted process does not write it), no longer
            // in the queue: the journal has it if the allocator decided it.
            do {
                found = try StatusIndex.scan(journal, entity: id)[id].flatMap { RentalStatus(document: $0.document) }
            } catch {
                throw IntakeError(.ioError, "cannot read request \(id): the journal is unreadable: \(error)")
            }
        }
        // To a caller who may not see every request, another user's request and no request at
        // all get the same answer: which ids exist is not theirs to learn.
        guard let status = found, caller.mayAccess(requestSubmittedBy: status.submittedBy) else {
            if caller.isOperator { throw IntakeError(.noInput, "no request \(id)") }
            throw IntakeError(.notPermitted, "request \(id) does not exist or belongs to another user")
        }
        return status
    }

    /// The requests of `customer` the caller may see, newest first.
    public func statuses(customer: String, caller: Caller) throws(IntakeError) -> [RentalStatus] {
        try visible(caller, { try $0.entities(key: "customer", value: customer, limit: 10_000) },
                    fallback: { $0.keys["customer"] == customer })
            .sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
    }

    /// The requests the caller may see, optionally only those in `state`, newest first.
    public func list(state: RentalState?, caller: Caller) throws(IntakeError) -> [RentalStatus] {
        try visible(caller, { index in
            if caller.isOperator { return try index.entities(state: state?.rawValue, limit: 100_000) }
            return try index.entities(key: "submitted_by", value: String(caller.uid), limit: 100_000)
                .filter { state == nil || $0.state == state?.rawValue }
        }, fallback: { state == nil || $0.state == state?.rawValue }).sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
    }

    /// Polls the status of `id` until the allocator has decided (any state but `received`) or
    /// `timeout` passes; returns the last status seen.
    public func waitForDecision(_ id: String, caller: Caller, timeout: Duration) throws(IntakeError) -> RentalStatus {
        let deadline = ContinuousClock.now + timeout
        while true {
            let current = try status(id, caller: caller)
            if current.state != .received || ContinuousClock.now >= deadline { return current }
            if !restricted { _ = try? index.catchUp(from: journal) }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    // MARK: Helpers

    /// The statuses `query` finds that the caller may see. When the index cannot be used,
    /// `fallback` filters the journal's own projection instead (and the log says so).
    private func visible(_ caller: Caller, _ query: (StatusIndex) throws -> [IndexedEntity],
                         fallback: (IndexedEntity) -> Bool) throws(IntakeError) -> [RentalStatus] {
        let rows: [IndexedEntity]
        do {
            rows = try query(index)
        } catch {
            logger.log(level: fallbackLevel, "status index unusable; answering from the journal", metadata: ["error": "\(error)"])
            do { rows = try StatusIndex.scan(journal).values.filter(fallback) } catch {
                throw IntakeError(.ioError, "the status index is unusable and the journal unreadable: \(error)")
            }
        }
        var statuses = rows.compactMap { RentalStatus(document: $0.document) }
        if restricted {
            // The requests still queued are in neither the index nor the journal yet (a restricted
            // submit journals nothing): the queue has them.
            var known = Set(statuses.map(\.id))
            let queued: [[UInt8]]
            do { queued = try allocation.queuedPayloads() } catch {
                throw IntakeError(error, doing: "listing the queued requests")
            }
            for payload in queued {
                for case .allocate(let request) in AllocationCommand.commands(inPayload: payload) ?? [] where !known.contains(request.id) {
                    let entity = IndexedEntity(RentalStatus(received: request).indexEvent())
                    guard fallback(entity), let status = RentalStatus(document: entity.document) else { continue }
                    known.insert(request.id)
                    statuses.append(status)
                }
            }
        }
        return statuses.filter { caller.mayAccess(requestSubmittedBy: $0.submittedBy) }
    }

    private func queuedStatus(_ id: String) throws(IntakeError) -> RentalStatus? {
        guard let itemID = ItemID(id) else { return nil }
        if let member = try queuedBatchMember(id) { return member }  // a request of a queued batch
        do {
            guard let payload = try allocation.peek(id: itemID),
                  let command = try? JSONDecoder().decode(AllocationCommand.self, from: Data(payload)),
                  let request = command.request else { return nil }
            return RentalStatus(received: request)
        } catch {
            throw IntakeError(error, doing: "looking for request \(id) in the spool")
        }
    }

    func isKnown(_ id: String) throws(IntakeError) -> Bool {
        if (try? index.entity(id)) != nil { return true }
        return try queuedStatus(id) != nil
    }

    /// Journals `status` durably and writes it to the index at once. Failures are logged, not
    /// thrown: the command is already durable in the queue, and the allocator's later steps
    /// carry the whole status. A restricted process does neither (it may be stopped holding the
    /// journal's lock or the index's write lock): the allocator journals the `received` status
    /// when it takes the command, and the cancel's outcome when it decides it.
    private func record(_ status: RentalStatus) {
        guard !restricted else { return }
        let event = status.indexEvent()
        do {
            try journal.append([event.encoded()], durability: .durable)
        } catch {
            logger.warning("cannot journal status", metadata: ["request": "\(status.id)", "error": "\(error)"])
        }
        do {
            try index.apply([event])
        } catch {
            logger.warning("cannot update status index", metadata: ["request": "\(status.id)", "error": "\(error)"])
        }
    }
}
