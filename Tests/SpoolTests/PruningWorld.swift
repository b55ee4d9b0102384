import Foundation
import GRDB
import Logging
import Rentals
import Testing
@testable import Allocator
@testable import Intake
@testable import Notifier
@testable import Spool

/// A spool with an allocator and a notifier run in process, for the retention pruning tests:
/// requests decided, their notifications delivered, rentals completed, at chosen times.
final class PruningWorld: @unchecked Sendable {
    let directory: TemporaryDirectory
    let spool: Spool
    var configuration: SystemConfiguration
    let allocator: AllocationService
    let notifier: NotificationService
    let allocation: Queue
    let notifications: Queue
    let keys: RecordDirectory
    let delivered: RecordDirectory
    static let day: Int64 = 86_400_000

    init(retentionDays: Int = 1, units: [String] = ["U1", "U2"], hook: Bool = true) throws {
        (directory, spool) = try makeSpool()
        configuration = SystemConfiguration()
        configuration.spoolRoot = spool.path
        configuration.retentionDays = retentionDays
        configuration.maildirRoot = directory.sub("maildir")
        if hook { configuration.notifyHook = "cat >/dev/null; echo \"$SPOOL_EVENT_ID\" >> '\(directory.sub("hook.log"))'" }
        allocator = try AllocationService(spool: spool, configuration: configuration, logger: Logger(label: "test"))
        notifier = try NotificationService(spool: spool, configuration: configuration, logger: Logger(label: "test"))
        allocation = try spool.queue(.allocation, retry: RetryPolicy(maxAttempts: configuration.maxAttempts))
        notifications = try spool.queue(.notifications, retry: RetryPolicy(maxAttempts: configuration.maxAttempts))
        keys = try RecordDirectory(spool: spool, path: "intake/keys")
        delivered = try RecordDirectory(spool: spool, path: "notifier/delivered")
        try allocator.store.addUnits(units.map { StorageUnit(id: $0, size: "S", site: "x") }, sizes: SizeClass.defaults)
    }

    var horizon: Int64 { RetentionPruning.redeliveryHorizonMilliseconds(configuration) }

    func request(_ id: String, _ from: String, _ to: String) -> RentalRequest {
        RentalRequest(id: id, customer: "c-\(id)", contact: "c@example.com", size: "S",
                      period: RentalPeriod(start: CalendarDay(iso: from)!, end: CalendarDay(iso: to)!)!,
                      submittedBy: 0, submittedByName: "root", createdAt: 0)
    }

    /// Decides `commands` and publishes them: journal, index, notification queue.
    @discardableResult
    func decide(_ commands: [AllocationCommand], now: Int64 = Clock.nowMilliseconds()) throws -> [AllocationService.Decision] {
        try allocator.journalReceived(commands)
        let decisions = try allocator.decide(commands, now: now)
        try allocator.drainOutbox()
        return decisions
    }

    /// Delivers every waiting notification (as the notifier daemon does); returns how many items.
    @discardableResult
    func deliverAll() throws -> Int {
        var count = 0
        while let item = try notifications.claimNext(lease: .seconds(60)) {
            #expect(notifier.handle(item) == .done)
            try notifications.acknowledge(item)
            count += 1
        }
        return count
    }

    /// Decides every waiting allocation command (as the allocator daemon does); returns the decisions.
    func decideQueued(now: Int64 = Clock.nowMilliseconds()) throws -> [AllocationService.Decision] {
        var decisions: [AllocationService.Decision] = []
        while let item = try allocation.claimNext(lease: .seconds(60)) {
            let command = try JSONDecoder().decode(AllocationCommand.self, from: Data(item.payload))
            decisions += try decide([command], now: now)
            try allocation.acknowledge(item)
        }
        return decisions
    }

    /// Puts a copy of `payload` in the dead letters of `queue` under `id`.
    func deadLetter(_ payload: [UInt8], id: String, in queue: Queue) throws {
        try queue.enqueue(payload, id: ItemID(id)!)
        let item = try #require(try queue.claim(id: ItemID(id)!, lease: .seconds(60)))
        try queue.deadLetter(item, error: "test")
    }

    /// Records an idempotency key naming `request`, as a submit with `--idempotency-key` does.
    func recordKey(_ name: String, for request: RentalRequest) throws {
        _ = try keys.createOnce(name, IntakeService.keyRecord(request))
    }

    func prune(now: Int64, dryRun: Bool = false) throws -> [String: Int] {
        try RetentionPruning.prune(spool: spool, configuration: configuration, now: Timestamp(milliseconds: now),
                                   dryRun: dryRun, logger: Logger(label: "test")).counts
    }

    /// The store's and records' contents, for comparing states.
    struct State: Equatable {
        var rentals: [String: String]
        var processed: [String: Int64]
        var delivered: Set<String>
        var keys: Set<String>
    }

    func state() throws -> State {
        try allocator.store.read { db in
            State(rentals: Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT request_id, state FROM rental").map { ($0[0], $0[1]) }),
                  processed: Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT key, at FROM processed").map { ($0[0], $0[1]) }),
                  delivered: Set(try delivered.names()), keys: Set(try keys.names()))
        }
    }

    /// How many times the notification hook ran for each event id: a customer notified twice
    /// shows as 2 (the Maildir alone would not show it: it finds its own message by event id).
    func hookRuns() -> [String: Int] {
        let text = (try? String(contentsOfFile: directory.sub("hook.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").reduce(into: [:]) { $0[String($1), default: 0] += 1 }
    }
}
