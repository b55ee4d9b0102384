import DaemonRuntime
import Foundation
import GRDB
import Intake
import Logging
import Rentals
@testable import Allocator
@testable import Notifier
@testable import Spool

/// The run the power-loss simulation records, and the recovery and checks it runs on every
/// crash state. Everything happens in this process, single-threaded, as the programs would do
/// it: submits and cancels through ``IntakeService`` (as `spoolctl`), decisions through
/// ``AllocatorDaemon/handle(_:service:health:logger:)`` and deliveries through
/// ``NotificationService/handle(_:)`` (as the daemons' workers), every file-system call of all
/// of them through one ``RecordingFileSystem``.
enum PowerLossWorkload {
    /// The recorded run: its events and SQLite snapshots.
    struct Recording {
        var events: [PowerLossEvent]
        var snapshots: [[String: [UInt8]]]
        var untracked: Int
        var sqliteSynchronous: Int
    }

    static let quiet = Logger(label: "powerloss", factory: { _ in SwiftLogNoOpLogHandler() })
    static let caller = Caller(uid: 0, name: "root", isOperator: true)
    /// The run's submits with an idempotency key (customer, key): repeated at every recovery.
    static let keyedSubmits = [("bob", "bob-1")]

    static func configuration(world: String) -> SystemConfiguration {
        var configuration = SystemConfiguration()
        configuration.spoolRoot = "\(world)/spool"
        configuration.maildirRoot = "\(world)/mail"
        return configuration
    }

    static func form(_ customer: String, key: String? = nil) -> RentalForm {
        RentalForm(customer: customer, contact: "\(customer)@example.com", size: "S", from: "2099-01-01", months: 1, idempotencyKey: key)
    }

    /// Records the run in `world` (an empty directory): two units of size S; two submits (one
    /// with an idempotency key), both decided and confirmed; a journal rotation; three more
    /// submits (one restricted, as the setgid `spoolctl` of an ordinary user makes it), a cancel
    /// of a confirmed rental and one of a request still queued (withdrawn); the rest rejected
    /// or assigned (the freed unit), everything notified; and the keyed submit repeated.
    static func record(world: String) throws -> Recording {
        let recorder = RecordingFileSystem(world: world, databases: ["spool/allocator/state.sqlite", "spool/index/status.sqlite"])
        let configuration = configuration(world: world)
        let intake = try IntakeService(configuration: configuration, logger: quiet, restricted: false, calls: recorder.calls)
        let spool = intake.spool
        let allocation = try AllocationService(spool: spool, configuration: configuration, logger: quiet)
        try allocation.store.addUnits([StorageUnit(id: "S-1", size: "S", site: "north"), StorageUnit(id: "S-2", size: "S", site: "north")],
                                      sizes: configuration.sizes)
        // The writer's setting (commits go through it; a reader's says nothing about them).
        let synchronous = try allocation.store.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") } ?? -1
        let health = HealthReporter(records: try RecordDirectory(spool: spool, path: "state"), logger: quiet)
        let notifier = try NotificationService(spool: spool, configuration: configuration, logger: quiet)
        let allocationQueue = try spool.queue(.allocation)
        let notificationQueue = try spool.queue(.notifications)

        // As the setgid spoolctl of an ordinary user: neither journals nor writes the index (the
        // allocator journals `received` when it takes the command).
        let restricted = try IntakeService(configuration: configuration, logger: quiet, restricted: true, calls: recorder.calls)
        func submit(_ customer: String, key: String? = nil, through service: IntakeService? = nil) throws -> String {
            let submission = try (service ?? intake).submit(form(customer, key: key), caller: caller)
            recorder.acknowledge(.submitted(id: submission.id, customer: customer, idempotencyKey: key))
            return submission.id
        }
        func cancel(_ id: String) throws {
            guard try intake.cancel(id, caller: caller) == .requested else { throw PowerLossError("cancel of \(id) did nothing") }
            recorder.acknowledge(.cancelled(id: id))
        }
        func allocate() throws {
            while let item = try allocationQueue.claimNext(lease: .seconds(300)) {
                try finish(AllocatorDaemon.handle(item, service: allocation, health: health, logger: quiet), item, allocationQueue)
            }
        }
        func notify() throws {
            while let item = try notificationQueue.claimNext(lease: .seconds(300)) {
                try finish(notifier.handle(item), item, notificationQueue)
            }
        }

        let first = try submit("alice")
        _ = try submit(keyedSubmits[0].0, key: keyedSubmits[0].1)
        try allocate()
        try notify()
        try Journal(spool: spool).rotate()
        _ = try submit("carol")
        let fourth = try submit("dave")
        _ = try submit("erin", through: restricted)
        try cancel(first)
        try cancel(fourth)
        try allocate()
        try notify()
        _ = try intake.submit(form(keyedSubmits[0].0, key: keyedSubmits[0].1), caller: caller)
        recorder.finish()

        return Recording(events: recorder.events, snapshots: recorder.snapshots, untracked: recorder.untracked, sqliteSynchronous: synchronous)
    }

    /// Acknowledges, retries or dead-letters an item as ``QueueProcessor`` does; anything but
    /// `.done` is unexpected here.
    static func finish(_ outcome: ProcessingOutcome, _ item: ClaimedItem, _ queue: Queue) throws {
        switch outcome {
        case .done:
            try queue.acknowledge(item)
        case .retry(let error):
            _ = try queue.retryLater(item, error: error)
            throw PowerLossError("\(queue.name) item \(item.id) retried: \(error)")
        case .reject(let error):
            try queue.deadLetter(item, error: error)
            throw PowerLossError("\(queue.name) item \(item.id) dead-lettered: \(error)")
        }
    }

    /// Recovers the crash state in `world` the way production does after a power loss, and
    /// returns every violation found (empty: the state is fine).
    ///
    /// Recovery: with `realReconcile`, first the real `spoolctl reconcile` (exit 0 expected);
    /// then the allocator's start-up (open the spool, publish the outbox, complete ended
    /// rentals, sweep staging), the notifier's start-up, then `spoolctl reconcile`'s steps
    /// (reclaim leases, as if they had expired: this process's pid is the recorded holder's;
    /// publish the outbox; catch the index up from the journal, reporting damage; restore
    /// decided requests from the allocator store); the run's keyed submit repeated;
    /// both queues processed until empty; reconcile's catch-up again.
    ///
    /// Checks: recovery throws nothing; every acknowledged request is in a terminal state
    /// (confirmed, rejected or cancelled, and notified), cancelled if its cancel was
    /// acknowledged, with its message in the customer's Maildir; a repeated keyed submit
    /// returns the acknowledged id, or, not acknowledged, succeeds and is decided too; no queue holds anything (nothing dead-lettered); the journal
    /// reads without damage; every message in a Maildir is whole (``isWhole(_:eventId:)``).
    static func recover(world: String, acks: [PowerLossAck], recording: Recording, realReconcile: Bool) -> [String] {
        var violations: [String] = []
        let configuration = configuration(world: world)
        let farFuture = Clock.nowMilliseconds() + 1_000_000_000
        if realReconcile {
            // The real binary first, on the state as the power loss left it.
            do {
                let reconcile = try ChildProcess("spoolctl", ["reconcile", "--spool", configuration.spoolRoot])
                let (status, _, errors) = reconcile.finish()
                if status != 0 { violations.append("spoolctl reconcile exited \(status): \(errors.suffix(300))") }
            } catch {
                violations.append("cannot run spoolctl reconcile: \(error)")
            }
        }
        do {
            // The allocator's and the notifier's start-up.
            let (spool, allocationQueue, service, health) = try AllocatorDaemon.startUp(configuration: configuration, logger: quiet)
            let notificationQueue = try spool.queue(.notifications, retry: RetryPolicy(maxAttempts: configuration.maxAttempts))
            let notifier = try NotificationService(spool: spool, configuration: configuration, logger: quiet)
            // reconcile
            for queue in [allocationQueue, notificationQueue] { try queue.reclaimExpiredLeases(now: farFuture) }
            try service.drainOutbox()
            let index = try StatusIndex(spool: spool)
            let journal = try Journal(spool: spool)
            let first = try index.catchUpReportingDamage(from: journal)
            if !first.damage.isEmpty { violations.append("journal damage at recovery: \(first.damage)") }
            _ = try service.restoreIndexFromStore(spool: spool)

            let intake = try IntakeService(configuration: configuration, logger: quiet, restricted: false)
            // The keyed submit repeated, as a client retries: the acknowledged id and nothing
            // new; not acknowledged (it may have crashed halfway), a request that must then be
            // decided like an acknowledged one.
            var expected = acks
            for (customer, key) in keyedSubmits {
                let again = try intake.submit(form(customer, key: key), caller: caller)
                let acknowledged = acks.first { if case .submitted(_, let named, let keyed) = $0 { named == customer && keyed == key } else { false } }
                if case .submitted(let id, _, _)? = acknowledged {
                    if again.id != id || again.created { violations.append("keyed submit \(key) repeated: \(again), acknowledged \(id)") }
                } else {
                    expected.append(.submitted(id: again.id, customer: customer, idempotencyKey: key))
                }
            }
            for _ in 0..<5 {
                var handled = 0
                while let item = try allocationQueue.claimNext(lease: .seconds(300)) {
                    handled += 1
                    do { try finish(AllocatorDaemon.handle(item, service: service, health: health, logger: quiet), item, allocationQueue) } catch {
                        violations.append("\(error)")
                    }
                }
                while let item = try notificationQueue.claimNext(lease: .seconds(300)) {
                    handled += 1
                    do { try finish(notifier.handle(item), item, notificationQueue) } catch { violations.append("\(error)") }
                }
                if handled == 0 { break }
            }
            try service.drainOutbox()
            let last = try index.catchUpReportingDamage(from: journal)
            if !last.damage.isEmpty { violations.append("journal damage after processing: \(last.damage)") }
            for queue in [allocationQueue, notificationQueue] {
                let counts = try queue.counts(now: farFuture)
                if counts != QueueCounts() { violations.append("queue \(queue.name) not empty after recovery: \(counts)") }
            }

            var cancelled = Set<String>()
            for case .cancelled(let id) in acks { cancelled.insert(id) }
            for case .submitted(let id, let customer, _) in expected {
                let status = try intake.status(id, caller: caller)
                let kind: String
                switch status.state {
                case .confirmed: kind = "confirmation"
                case .rejected: kind = "rejection"
                case .cancelled: kind = "cancellation"
                default:
                    violations.append("acknowledged request \(id) ended \(status.state.rawValue), not terminal")
                    continue
                }
                if cancelled.contains(id), status.state != .cancelled {
                    violations.append("request \(id): cancel acknowledged, but it ended \(status.state.rawValue)")
                }
                if status.notifiedAt == nil { violations.append("request \(id) \(status.state.rawValue) but not notified") }
                if access("\(configuration.maildirRoot)/\(customer)/new/\(id)-\(kind)", F_OK) != 0 {
                    violations.append("request \(id) \(status.state.rawValue): no \(kind) message in \(customer)'s Maildir")
                }
            }
        } catch {
            violations.append("recovery failed: \(error)")
        }
        for path in filesBelow(configuration.maildirRoot) {
            let parts = path.split(separator: "/")
            guard parts.count == 3, parts[1] == "new" || parts[1] == "cur" else { continue }
            let bytes = (try? contents("\(configuration.maildirRoot)/\(path)")) ?? []
            if !isWhole(bytes, eventId: String(parts[2].split(separator: ":")[0])) {
                violations.append("message \(path) is not whole (\(bytes.count) bytes)")
            }
        }
        return violations
    }

    static func contents(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw PowerLossError("cannot read \(path)") }
        return [UInt8](data)
    }

    /// Whether a Maildir message is one the renderer wrote whole: its headers name the event
    /// (request id and kind, from the file name `<request id>-<kind>`), and it ends with the
    /// body's last line. A torn write (a prefix) or a zero-filled one fails this.
    static func isWhole(_ bytes: [UInt8], eventId: String) -> Bool {
        guard let dash = eventId.lastIndex(of: "-") else { return false }
        let request = eventId[..<dash], kind = eventId[eventId.index(after: dash)...]
        let text = String(decoding: bytes, as: UTF8.self)
        return text.hasPrefix("From: ") && text.contains("\nX-Request-ID: \(request)\n")
            && text.contains("\nX-Notification-Kind: \(kind)\n")
            && text.hasSuffix("\nQuote the request id \(request) in any question about it.\n")
    }
}
