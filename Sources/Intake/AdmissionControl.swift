import Foundation
import Rentals
import Spool

/// The circuit breaker in front of the allocator (non-functional requirement 3).
///
/// Closed: submissions are admitted. It opens when the allocation backlog reaches the high-water
/// mark or the allocator reports `breaker_failure_threshold` failures in a row; while open,
/// submissions fail with exit 75 and "retry in N s". After the cooldown, the next submission is
/// the half-open probe: if the backlog is below the low-water mark and the allocator is not
/// failing, the breaker closes and admits it; otherwise it opens for another cooldown. A merely
/// stopped allocator does not open it (submissions wait in the spool) until the backlog reaches
/// the high-water mark. State lives in `state/breaker`, shared by every `spoolctl` process and
/// serialized by a lock.
///
/// The backlog is measured by ``Queue/boundedBacklog(limit:)``: exactly when it may have
/// reached the mark, and from a sample of the ready buckets, spread evenly from a random start (a dozen of 256 for an empty
/// queue and a mark of 1,000) when the sample shows it is clearly below it, so a submit does
/// not list the whole queue. The breaker opens at the same backlog as with a full count; the
/// chance that a sample hides a backlog at the mark is below 3 × 10⁻⁸ per submit (and the next
/// submit samples again).
public struct AdmissionControl: Sendable {
    /// The breaker's persisted state.
    public struct State: Codable, Sendable, Equatable {
        /// `closed` or `open`.
        public var state = "closed"
        /// When it opened (milliseconds since the epoch).
        public var openedAt: Int64 = 0
        /// Why it opened.
        public var reason = ""

        enum CodingKeys: String, CodingKey {
            case state, reason
            case openedAt = "opened_at"
        }
    }

    let configuration: SystemConfiguration
    let queue: Queue
    let records: RecordDirectory

    /// A breaker over `queue`'s backlog, keeping state in `records`.
    public init(configuration: SystemConfiguration, queue: Queue, records: RecordDirectory) {
        self.configuration = configuration
        self.queue = queue
        self.records = records
    }

    /// How long a submission waits for the breaker's lock.
    static let lockTimeout: Duration = .seconds(1)

    /// Admits one submission or throws ``IntakeError/Code/tryAgain`` with the seconds to wait.
    ///
    /// The state is read and updated under the breaker's lock, waited for at most
    /// ``lockTimeout``: a `spoolctl` its caller stopped (`SIGSTOP`) may hold it for ever. Without
    /// the lock, the submission is decided from the state as read, and the state is not updated
    /// (an opening or closing the breaker would have written is left to the next submission
    /// that gets the lock): the decision is as good as a concurrent submission's, and no one
    /// waits for a stopped process.
    public func admit(now: Int64 = Clock.nowMilliseconds()) throws(IntakeError) {
        do {
            let decided: Void? = try records.withLock("breaker", timeout: Self.lockTimeout) { try decide(now: now, persist: true) }
            if decided == nil { try decide(now: now, persist: false) }
        } catch let error as IntakeError {
            throw error
        } catch let error as SpoolError {
            throw IntakeError(error, doing: "admission check")
        } catch {
            throw IntakeError(.ioError, "admission check: \(error)")
        }
    }

    /// The breaker's decision for one submission; writes the new state only if `persist`.
    private func decide(now: Int64, persist: Bool) throws {
        let write = { (state: State) throws in if persist { try self.write(state, "breaker") } }
        var state = try read(State.self, "breaker") ?? State()
        let health = try read(AllocatorHealth.self, AllocatorHealth.recordName) ?? AllocatorHealth()
        let cooldown = Int64(configuration.breakerCooldownSeconds) * 1000
        let failing = health.consecutiveFailures >= configuration.breakerFailureThreshold
        if state.state == "open" {
            let remaining = state.openedAt + cooldown - now
            if remaining > 0 { throw refusal(state.reason, retryAfter: remaining) }
            // Half-open: this submission is the probe.
            let backlog = try queue.boundedBacklog(limit: configuration.breakerLowWater)
            if backlog < configuration.breakerLowWater && !failing {
                try write(State())
                return
            }
            state = State(state: "open", openedAt: now, reason: reason(backlog: backlog, failing: failing, health))
            try write(state)
            throw refusal(state.reason, retryAfter: cooldown)
        }
        let backlog = try queue.boundedBacklog(limit: configuration.breakerHighWater)
        guard backlog >= configuration.breakerHighWater || failing else { return }
        state = State(state: "open", openedAt: now, reason: reason(backlog: backlog, failing: failing, health))
        try write(state)
        throw refusal(state.reason, retryAfter: cooldown)
    }

    /// The breaker's current state (for `spoolctl queues`).
    public func currentState() throws -> State { try read(State.self, "breaker") ?? State() }

    private func reason(backlog: Int, failing: Bool, _ health: AllocatorHealth) -> String {
        if failing { return "the allocator keeps failing (\(health.consecutiveFailures) in a row: \(health.lastError ?? "unknown error"))" }
        return "the allocator is overloaded (\(backlog)+ requests waiting, limit \(configuration.breakerHighWater))"
    }

    private func refusal(_ reason: String, retryAfter milliseconds: Int64) -> IntakeError {
        let seconds = Int((milliseconds + 999) / 1000)
        return IntakeError(.tryAgain, "not accepting new requests right now: \(reason); retry in \(seconds) s", retryAfterSeconds: seconds)
    }

    /// Reads record `name`. One that does not decode is damage, never silently taken for a
    /// fresh state: a copy is kept in `corrupt/state.<name>.<crc32>` (once per content), and it
    /// reads as absent (the breaker closed, the allocator not failing), which its writers then
    /// replace (the breaker at the next submit, the allocator at its next report). Submissions
    /// do not stop for a damaged state record.
    private func read<T: Decodable>(_ type: T.Type, _ name: String) throws -> T? {
        guard let bytes = try records.read(name) else { return nil }
        if let value = try? JSONDecoder().decode(T.self, from: Data(bytes)) { return value }
        _ = try? records.keepDamagedCopy(of: name, bytes: bytes, label: "state")
        return nil
    }

    private func write<T: Encodable>(_ value: T, _ name: String) throws {
        try records.write(name, Array(try JSONEncoder().encode(value)))
    }
}
