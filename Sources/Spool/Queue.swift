#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// A named queue in a spool: `queues/<name>/{ready/<bucket>,active,dead}`.
///
/// Items are immutable files; their state is the directory they are in and their name (see
/// `docs/spool-format.md`). Producers ``enqueue(_:id:)``; consumers ``claimNext(lease:)``, then
/// ``acknowledge(_:)``, ``retryLater(_:error:)`` or ``release(_:)`` what they claimed. Any number
/// of threads and processes may use one queue at once: each transition is a single `rename(2)`,
/// so exactly one of several racing consumers wins an item. Delivery is at least once: a
/// consumer that dies holding an item loses it to the next claimer once the lease expires (or at
/// once, when its process is provably gone), so consumers must be idempotent.
public final class Queue: Sendable {
    /// The queue's name.
    public let name: QueueName
    /// Its retry and dead-letter policy.
    public let retry: RetryPolicy
    /// The spool the queue lives in.
    public let spool: Spool
    let base: Directory
    let ready: Directory
    let active: Directory
    let dead: Directory
    private let cursor = Mutex(ClaimCursor())
    /// Transitions whose rename or unlink happened but whose directory `fsync` failed, by the
    /// item's `active/` name: a retry of the same call syncs again instead of reporting a lost
    /// lease.
    private let unsynced = Mutex<[String: Directory]>([:])

    /// Number of hashed subdirectories of `ready/`.
    static let bucketCount = 256

    init(spool: Spool, name: QueueName, retry: RetryPolicy) throws(SpoolError) {
        self.spool = spool
        self.name = name
        self.retry = retry
        let queues = try spool.root.subdirectory("queues", create: true)
        base = try queues.subdirectory(name.rawValue, create: true)
        ready = try base.subdirectory("ready", create: true)
        active = try base.subdirectory("active", create: true)
        dead = try base.subdirectory("dead", create: true)
        cursor.withLock { $0.bucket = Int.random(in: 0..<Self.bucketCount) }
    }

    var logger: Logger { spool.logger }

    /// True when one of this queue's directories (`queues/<name>` and its `ready`, `active`,
    /// `dead`) was removed, renamed or replaced after the queue opened it: a process holding it
    /// would wait on, claim from and scan a directory nobody enqueues into any more. A
    /// long-running consumer that sees it must open the queue afresh (``QueueProcessor`` stops).
    public var isDetached: Bool {
        [base, ready, active, dead].contains { !$0.isStillAt(below: spool.root) }
    }

    func bucket(_ name: String, create: Bool = true) throws(SpoolError) -> Directory {
        try ready.subdirectory(name, create: create)
    }

    // MARK: Producing

    /// Durably enqueues `payload` and returns its id.
    ///
    /// The item is written to `tmp/`, `fsync`ed, renamed into `ready/<bucket>/`, and that
    /// directory is `fsync`ed before this returns: once it returns the item survives a crash, and
    /// no consumer ever sees it partially written. On failure nothing is left visible and the
    /// call can simply be retried.
    ///
    /// - Parameter id: the item's id; a fresh ``ItemID/generate(nowMilliseconds:)`` by default.
    ///   A caller-chosen id must be unique in this queue.
    /// - Throws: ``SpoolError/tooLarge(size:limit:)`` over ``Spool/Configuration/maxItemBytes``;
    ///   ``SpoolError/system(operation:path:_:)`` (`ENOSPC`, `EIO`, `EACCES`, …);
    ///   ``SpoolError/unsafePath(_:)`` if a bucket directory was replaced by a symlink.
    @discardableResult
    public func enqueue(_ payload: [UInt8], id: ItemID? = nil) throws(SpoolError) -> ItemID {
        let limit = spool.configuration.maxItemBytes
        guard payload.count <= limit else { throw .tooLarge(size: payload.count, limit: limit) }
        let id = id ?? ItemID.generate()
        let file = ItemFile(id: id, enqueuedAt: Clock.nowMilliseconds(), payload: payload)
        let entry = EntryName.Ready(id: id, attempts: 0, due: 0)
        try bucket(id.bucket).createDurably(entry.name, contents: file.encoded(), staging: spool.staging)
        return id
    }

    // MARK: Consuming

    /// Claims the next due item for `lease`, or returns `nil` when none is due now.
    ///
    /// The item moves to `active/` under a name that records this process and the lease
    /// deadline; no other consumer can claim it until the lease expires or this process is gone.
    /// Files that cannot be decoded (garbage, truncated, another version, oversize, a symlink)
    /// are moved to `corrupt/` with a log line and skipped. The claim itself is not `fsync`ed: a
    /// crash may undo it, which at-least-once delivery allows.
    ///
    /// - Throws: ``SpoolError/system(operation:path:_:)`` when the queue cannot be read at all.
    public func claimNext(lease: Duration) throws(SpoolError) -> ClaimedItem? {
        while let candidate = try nextCandidate() {
            // A hinted arrival may be a retry scheduled for later.
            if candidate.entry.due > Clock.nowMilliseconds() {
                cursor.withLock { $0.nextDue = min($0.nextDue ?? candidate.entry.due, candidate.entry.due) }
                continue
            }
            if let item = try claim(candidate, lease: lease) { return item }
        }
        return nil
    }

    /// Claims the item with `id` if it is waiting and due; `nil` otherwise.
    public func claim(id: ItemID, lease: Duration) throws(SpoolError) -> ClaimedItem? {
        let directory = try bucket(id.bucket)
        for name in try directory.names() {
            guard let entry = EntryName.ready(name), entry.id == id, entry.due <= Clock.nowMilliseconds() else { continue }
            return try claim(Candidate(bucket: id.bucket, entry: entry), lease: lease)
        }
        return nil
    }

    private func claim(_ candidate: Candidate, lease: Duration) throws(SpoolError) -> ClaimedItem? {
        let source = try bucket(candidate.bucket)
        let claimed = EntryName.Active(id: candidate.entry.id, attempts: candidate.entry.attempts,
                                       holder: .current, deadline: Clock.nowMilliseconds() + lease.milliseconds)
        do {
            try source.move(candidate.entry.name, to: active, as: claimed.name, operation: "claim")
        } catch .notFound {
            return nil  // another consumer was first
        }
        do {
            let bytes = try active.readFile(claimed.name, limit: spool.configuration.maxItemBytes + 4096)
            let file = try ItemFile.decode(bytes)
            guard file.id == claimed.id else { throw ItemDecodingError("file holds id \(file.id), its name says \(claimed.id)") }
            return ClaimedItem(queue: name, entry: claimed, enqueuedAt: file.enqueuedAt, payload: file.payload)
        } catch let error as ItemDecodingError {
            spool.quarantine(claimed.name, in: active, queue: name, reason: error.reason)
        } catch let error as SpoolError {
            switch error {
            case .unsafePath, .tooLarge:
                spool.quarantine(claimed.name, in: active, queue: name, reason: error.description)
            case .notFound:
                break  // reclaimed from under us between rename and open: not ours any more
            default:
                // An I/O error reading the file: give the claim back untouched and report.
                try? active.move(claimed.name, to: source, as: candidate.entry.name, operation: "unclaim")
                throw error
            }
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
        return nil
    }

    private func nextCandidate() throws(SpoolError) -> Candidate? {
        if let next = cursor.withLock({ $0.pending.popLast() }) { return next }
        // Refill from the buckets, starting where the last scan stopped, until one has due items.
        let now = Clock.nowMilliseconds()
        let start = cursor.withLock { $0.bucket }
        for step in 0..<Self.bucketCount {
            let index = (start + step) % Self.bucketCount
            let bucketName = ItemID.bucketName(index)
            let directory: Directory
            do {
                directory = try bucket(bucketName, create: false)
            } catch .unsafePath(let path) {
                logger.error("skipping unsafe bucket", metadata: ["path": "\(path)"])
                continue
            } catch .notFound {
                continue
            }
            var due: [Candidate] = []
            var nextDue: Int64?
            for name in try directory.names() {
                guard let entry = EntryName.ready(name) else {
                    spool.quarantine(name, in: directory, queue: self.name, reason: "name is not <id>.<attempts>.<due>")
                    continue
                }
                if entry.due <= now {
                    due.append(Candidate(bucket: bucketName, entry: entry))
                } else {
                    nextDue = min(nextDue ?? entry.due, entry.due)
                }
            }
            let found = due
            cursor.withLock { state in
                if let nextDue { state.nextDue = min(state.nextDue ?? nextDue, nextDue) }
                state.bucket = (index + 1) % Self.bucketCount
                // Oldest id last, so popLast() serves the bucket in id (time) order.
                state.pending = found.sorted { $0.entry.id > $1.entry.id }
            }
            if !found.isEmpty { return cursor.withLock { $0.pending.popLast() } }
        }
        return nil
    }

    /// Earliest due time (milliseconds) of a deferred item seen by the last scans, if any; a
    /// waiting consumer should look again no later than this.
    public var nextDueTime: Int64? { cursor.withLock { $0.nextDue } }

    /// Suggests a just-enqueued entry (seen by a watcher) as the next claim candidate.
    func hint(bucket: String, name: String) {
        guard let entry = EntryName.ready(name) else { return }
        cursor.withLock { $0.pending.append(Candidate(bucket: bucket, entry: entry)) }
    }

    /// Forgets ``nextDueTime``, before a consumer waits: the next scan sets it afresh.
    public func resetNextDue() { cursor.withLock { $0.nextDue = nil } }

    // MARK: Finishing

    /// Removes a processed item for good, durably (the `active/` directory is `fsync`ed).
    ///
    /// - Throws: ``SpoolError/leaseLost(id:)`` if the item is no longer held by this lease (it
    ///   expired and was reclaimed, or was already acknowledged); I/O errors as
    ///   ``SpoolError/system(operation:path:_:)``, after which the item is still held.
    public func acknowledge(_ item: ClaimedItem) throws(SpoolError) {
        do {
            try active.remove(item.entry.name, operation: "acknowledge")
        } catch .notFound {
            if try resumeTransition(item.entry.name) { return }
            throw .leaseLost(id: item.id.rawValue)
        }
        try finishTransition(item.entry.name, syncing: active)
    }

    /// Gives a claimed item back without counting an attempt (a consumer shutting down).
    public func release(_ item: ClaimedItem) throws(SpoolError) {
        try requeue(item.entry.name, id: item.id, attempts: item.attempts, due: 0, operation: "release")
    }

    func requeue(_ activeName: String, id: ItemID, attempts: Int, due: Int64, operation: String) throws(SpoolError) {
        let target = try bucket(id.bucket)
        do {
            try active.move(activeName, to: target, as: EntryName.Ready(id: id, attempts: attempts, due: due).name, operation: operation)
        } catch .notFound {
            if try resumeTransition(activeName) { return }
            throw .leaseLost(id: id.rawValue)
        }
        try finishTransition(activeName, syncing: target)
    }

    /// Syncs `directory` after an item left `active/` under `activeName`; on failure remembers it,
    /// so that the caller's retry completes the transition.
    func finishTransition(_ activeName: String, syncing directory: Directory) throws(SpoolError) {
        do {
            try directory.sync()
        } catch {
            unsynced.withLock { $0[activeName] = directory }
            throw error
        }
    }

    /// Completes a transition whose sync failed earlier; false if there is none for this name.
    func resumeTransition(_ activeName: String) throws(SpoolError) -> Bool {
        guard let directory = unsynced.withLock({ $0.removeValue(forKey: activeName) }) else { return false }
        try finishTransition(activeName, syncing: directory)
        return true
    }
}

/// An item a consumer holds under a lease.
public struct ClaimedItem: Sendable {
    /// The queue it was claimed from.
    public let queue: QueueName
    let entry: EntryName.Active
    /// When it was enqueued (milliseconds since the epoch).
    public let enqueuedAt: Int64
    /// The bytes enqueued.
    public let payload: [UInt8]

    /// The item's id.
    public var id: ItemID { entry.id }
    /// Earlier attempts that failed or whose lease expired (0 on the first delivery).
    public var attempts: Int { entry.attempts }
    /// When the lease runs out (milliseconds since the epoch); ``Queue/renew(_:lease:)`` extends it.
    public var leaseDeadline: Int64 { entry.deadline }
}

struct Candidate {
    var bucket: String
    var entry: EntryName.Ready
}

struct ClaimCursor {
    var bucket = 0
    var pending: [Candidate] = []
    var nextDue: Int64?
}
