#if canImport(Glibc)
import Glibc
#endif
import Logging

/// What ``Queue/retryLater(_:error:)`` did with an item.
public enum RetryOutcome: Sendable, Equatable {
    /// Back in the queue, due again at this time (milliseconds since the epoch).
    case retryAt(Int64)
    /// Out of attempts: moved to the dead-letter area with its error.
    case deadLettered
}

/// An item in a queue's dead-letter area.
public struct DeadLetter: Sendable, Equatable {
    /// The item's id.
    public let id: ItemID
    /// How many attempts it had.
    public let attempts: Int
    /// The last error recorded for it.
    public let lastError: String
}

extension Queue {
    /// Puts a claimed item back after a failed attempt: due again after the policy's backoff, or,
    /// once ``RetryPolicy/maxAttempts`` attempts failed, into `dead/` with `error` kept beside it.
    /// Durable when it returns.
    ///
    /// - Throws: ``SpoolError/leaseLost(id:)`` if the lease was lost; I/O errors.
    @discardableResult
    public func retryLater(_ item: ClaimedItem, error: String) throws(SpoolError) -> RetryOutcome {
        try retry(activeName: item.entry.name, id: item.id, attempts: item.attempts + 1, error: error)
    }

    /// Counts a failed attempt: dead-letters the item at the policy's limit, else puts it back
    /// due after the backoff (or at once, with `immediately`).
    /// Moves a claimed item straight to `dead/` with `error`, whatever its attempt count: for
    /// items that can never succeed (an undecodable command). Durable when it returns.
    public func deadLetter(_ item: ClaimedItem, error: String) throws(SpoolError) {
        try deadLetter(activeName: item.entry.name, id: item.id, attempts: item.attempts + 1, error: error)
        logger.warning("item dead-lettered", metadata: ["queue": "\(name)", "id": "\(item.id)", "error": "\(error)"])
    }

    func retry(activeName: String, id: ItemID, attempts: Int, error: String, immediately: Bool = false) throws(SpoolError) -> RetryOutcome {
        if attempts >= retry.maxAttempts {
            try deadLetter(activeName: activeName, id: id, attempts: attempts, error: error)
            logger.warning("item dead-lettered", metadata: ["queue": "\(name)", "id": "\(id)", "attempts": "\(attempts)", "error": "\(error)"])
            return .deadLettered
        }
        let due = immediately ? 0 : Clock.nowMilliseconds() + retry.delayMilliseconds(afterAttempts: attempts)
        try requeue(activeName, id: id, attempts: attempts, due: due, operation: "retry later")
        return .retryAt(due)
    }

    private func deadLetter(activeName: String, id: ItemID, attempts: Int, error: String) throws(SpoolError) {
        if try resumeTransition(activeName) { return }
        let errorName = EntryName.Dead.errorName(id)
        try dead.createDurably(errorName, contents: Array(error.utf8.prefix(16 * 1024)), staging: spool.staging)
        do {
            try active.move(activeName, to: dead, as: EntryName.Dead(id: id, attempts: attempts).name, operation: "dead-letter")
        } catch {
            try? dead.remove(errorName, operation: "undo dead-letter")
            if case .notFound = error { throw .leaseLost(id: id.rawValue) }
            throw error
        }
        try finishTransition(activeName, syncing: dead)
    }

    /// The items in the dead-letter area, oldest id first.
    public func deadLetters() throws(SpoolError) -> [DeadLetter] {
        var letters: [DeadLetter] = []
        for name in try dead.names() {
            guard let entry = EntryName.dead(name) else { continue }
            let text = (try? dead.readFile(EntryName.Dead.errorName(entry.id), limit: 64 * 1024)).map { String(decoding: $0, as: UTF8.self) }
            letters.append(DeadLetter(id: entry.id, attempts: entry.attempts, lastError: text ?? ""))
        }
        return letters.sorted { $0.id < $1.id }
    }

    /// Moves a dead item back into the queue with a fresh attempt count, due at once.
    ///
    /// - Throws: ``SpoolError/notFound(_:)`` if no dead item has this id.
    public func retryDeadLetter(_ id: ItemID) throws(SpoolError) {
        let entry = try deadEntry(id)
        let target = try bucket(id.bucket)
        try dead.move(entry.name, to: target, as: EntryName.Ready(id: id, attempts: 0, due: 0).name, operation: "retry dead letter")
        try target.sync()
        try? dead.remove(EntryName.Dead.errorName(id), operation: "remove error")
    }

    /// Deletes a dead item and its error for good.
    ///
    /// - Throws: ``SpoolError/notFound(_:)`` if no dead item has this id.
    public func purgeDeadLetter(_ id: ItemID) throws(SpoolError) {
        let entry = try deadEntry(id)
        try dead.remove(entry.name, operation: "purge dead letter")
        try? dead.remove(EntryName.Dead.errorName(id), operation: "purge error")
        try dead.sync()
    }

    private func deadEntry(_ id: ItemID) throws(SpoolError) -> EntryName.Dead {
        for name in try dead.names() {
            if let entry = EntryName.dead(name), entry.id == id { return entry }
        }
        throw .notFound("dead item \(id) in queue \(name)")
    }
}
