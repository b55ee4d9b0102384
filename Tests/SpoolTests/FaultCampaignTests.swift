import Foundation
import Notifier
import Synchronization
import Testing
@testable import Spool

/// The seam half of the faults campaign (`scripts/torture.d/faults`): libfiu cannot see
/// `openat`, `renameat`, `linkat`, `mkdirat` or `unlinkat`, the ``FileSystemCalls`` seam sees
/// every call. For each operation the spool's programs are built from (enqueue, claim by id,
/// release, dead-letter, reclaim, idempotency record, record replace, Maildir delivery, spool
/// creation), the n-th call of every kind fails in turn, with every errno of the campaign.
/// Expected each time: the operation throws an error that names the `errno` (or, when it can
/// tolerate the failed call, succeeds), nothing half-written is visible, and a retry succeeds.
///
/// Quick by default (the first, second and last call of each kind, `EIO` and `ENOSPC`); with
/// `TORTURE_MODE=full`, every call and also `EDQUOT` and `EROFS`. The number of faults injected
/// is printed as `seam faults injected=N`.
@Suite struct FaultCampaignTests {
    static let full = ProcessInfo.processInfo.environment["TORTURE_MODE"] == "full"
    static let codes: [Int32] = full ? [EIO, ENOSPC, EDQUOT, EROFS] : [EIO, ENOSPC]
    static let injected = Atomic<Int>(0)
    static let work = QueueName("work")

    /// One operation on a fresh spool (made by `prepare`, faults off) whose calls go through the
    /// injector. `operation` returns a value `done` checks; `unchanged` checks the state after
    /// it threw.
    struct Scenario {
        var prepare: (Spool, TemporaryDirectory) throws -> Void = { _, _ throws in }
        var operation: (Spool, TemporaryDirectory) throws -> Void
        var unchanged: (Spool, TemporaryDirectory) throws -> Void
        var done: (Spool, TemporaryDirectory) throws -> Void
        /// Whether an error names `errno` (the default: a ``SpoolError`` whose cause is it).
        var names: (any Error, Int32) -> Bool = { error, code in
            if case .system(_, _, let cause) = error as? SpoolError { return cause.errno == code }
            return false
        }
    }

    private func occurrences(_ count: Int) -> [Int] {
        Self.full ? Array(1...count) : Array(Set([1, min(2, count), count])).sorted()
    }

    private func run(_ scenario: Scenario, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let injector = FaultInjector()
        func fresh() throws -> (Spool, TemporaryDirectory) {
            let directory = TemporaryDirectory("fc")
            var configuration = Spool.Configuration()
            configuration.calls = FileSystemCalls.live.injecting(injector)
            let spool = try Spool(path: directory.sub("spool"), create: true, configuration: configuration)
            try scenario.prepare(spool, directory)
            return (spool, directory)
        }
        let (probe, probeDirectory) = try fresh()
        injector.arm()
        try scenario.operation(probe, probeDirectory)
        let counts = injector.disarm().counts
        try scenario.done(probe, probeDirectory)
        var surfaced = 0
        for (call, count) in counts.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            for occurrence in occurrences(count) {
                for code in Self.codes {
                    let (spool, directory) = try fresh()
                    let label = "\(call) #\(occurrence) of \(count), errno \(code)"
                    injector.arm(failing: call, occurrence: occurrence, errno: code)
                    do {
                        try scenario.operation(spool, directory)
                        if injector.disarm().fired { Self.injected.add(1, ordering: .relaxed) }
                        try scenario.done(spool, directory)
                        continue
                    } catch {
                        let fired = injector.disarm().fired
                        if fired { Self.injected.add(1, ordering: .relaxed) }
                        #expect(fired, "\(label): failed without the fault: \(error)", sourceLocation: sourceLocation)
                        #expect(scenario.names(error, code), "\(label): the error does not name the errno: \(error)",
                                sourceLocation: sourceLocation)
                        surfaced += 1
                    }
                    try scenario.unchanged(spool, directory)
                    do { try scenario.operation(spool, directory) } catch {
                        Issue.record("\(label): the retry failed: \(error)", sourceLocation: sourceLocation)
                        continue
                    }
                    try scenario.done(spool, directory)
                }
            }
        }
        #expect(surfaced > 0, sourceLocation: sourceLocation)
        print("seam faults injected=\(Self.injected.load(ordering: .relaxed))")
    }

    private static func queue(_ spool: Spool) throws -> Queue { try spool.queue(work, retry: RetryPolicy(maxAttempts: 2)) }
    private static let id = ItemID("item-1")!

    /// Claim by id (how a cancel withdraws a queued request).
    @Test func claimByID() throws {
        try run(Scenario(
            prepare: { spool, _ throws in try Self.queue(spool).enqueue([1, 2], id: Self.id) },
            operation: { spool, _ throws in _ = try #require(try Self.queue(spool).claim(id: Self.id, lease: .seconds(60))) },
            unchanged: { spool, _ throws in #expect(try Self.queue(spool).counts() == QueueCounts(ready: 1)) },
            done: { spool, _ throws in #expect(try Self.queue(spool).counts() == QueueCounts(active: 1)) }))
    }

    /// Release (a consumer shutting down), dead-letter and reclaim: the item is never lost and
    /// never in two places; the transition completes on retry.
    /// The same `Queue` does the retry (as a daemon's worker does): it remembers a transition
    /// whose directory sync failed and completes it.
    @Test func releaseDeadLetterAndReclaim() throws {
        final class Held: @unchecked Sendable { var item: ClaimedItem?; var queue: Queue? }
        let held = Held()
        let prepare: (Spool, TemporaryDirectory) throws -> Void = { spool, _ throws in
            held.queue = try Self.queue(spool)
            try held.queue!.enqueue([1], id: Self.id)
            held.item = try held.queue!.claimNext(lease: .seconds(60))
        }
        func one(_ spool: Spool) throws {
            let counts = try Self.queue(spool).counts()
            #expect(counts.ready + counts.active + counts.dead + counts.deferred == 1, "\(counts)")
        }
        try run(Scenario(prepare: prepare,
                         operation: { _, _ throws in try held.queue!.release(held.item!) },
                         unchanged: { spool, _ throws in try one(spool) },
                         done: { spool, _ throws in #expect(try Self.queue(spool).counts() == QueueCounts(ready: 1)) }))
        try run(Scenario(prepare: prepare,
                         operation: { _, _ throws in try held.queue!.deadLetter(held.item!, error: "poison") },
                         unchanged: { spool, _ throws in try one(spool) },
                         done: { spool, _ throws in #expect(try Self.queue(spool).counts() == QueueCounts(dead: 1)) }))
        try run(Scenario(prepare: prepare,
                         operation: { spool, _ throws in
                             _ = try held.queue!.reclaimExpiredLeases(now: Clock.nowMilliseconds() + 3_600_000)
                         },
                         unchanged: { spool, _ throws in try one(spool) },
                         done: { spool, _ throws in
                             let counts = try Self.queue(spool).counts(now: Clock.nowMilliseconds() + 7_200_000)
                             #expect(counts.active == 0 && counts.ready + counts.deferred == 1, "\(counts)")
                         }))
    }

    /// An idempotency key's record (created once) and a replaced record (the breaker's state, the
    /// allocator's health): absent or whole, never half; a failed replace leaves the old or the
    /// new bytes, never nothing; the retry finds or creates it whole.
    @Test func records() throws {
        let bytes = Array(#"{"id":"01","customer":"c"}"#.utf8)
        func keys(_ spool: Spool) throws -> RecordDirectory { try RecordDirectory(spool: spool, path: "intake/keys") }
        try run(Scenario(
            operation: { spool, _ throws in
                let existing = try keys(spool).createOnce("0-k", bytes)
                #expect(existing == nil || existing == bytes)
            },
            unchanged: { spool, _ throws in
                let record = try keys(spool).read("0-k")
                #expect(record == nil || record == bytes)
            },
            done: { spool, _ throws in #expect(try keys(spool).read("0-k") == bytes) }))
        try run(Scenario(
            prepare: { spool, _ throws in try keys(spool).write("r", [1]) },
            operation: { spool, _ throws in try keys(spool).write("r", bytes) },
            unchanged: { spool, _ throws in
                let record = try keys(spool).read("r")
                #expect(record == [1] || record == bytes)
            },
            done: { spool, _ throws in #expect(try keys(spool).read("r") == bytes) }))
    }

    /// Maildir delivery: no message half-written in `new/`, nothing left in `tmp/`, exactly one
    /// message after the retry.
    @Test func maildirDelivery() throws {
        let message = "Subject: confirmed\n\nunit B-201\n"
        func delivery(_ spool: Spool, _ directory: TemporaryDirectory) -> MaildirDelivery {
            MaildirDelivery(root: directory.sub("maildir"), calls: spool.configuration.calls)
        }
        try run(Scenario(
            operation: { spool, directory throws in
                try delivery(spool, directory).deliver(message, customer: "alice@example.com", eventId: "e1")
            },
            unchanged: { _, directory throws in
                let box = directory.sub("maildir/alice@example.com")
                for name in filesBelow("\(box)/new") {
                    #expect(try String(contentsOfFile: "\(box)/new/\(name)", encoding: .utf8) == message)
                }
                #expect(filesBelow("\(box)/tmp").isEmpty, "a staged message is left in tmp/")
            },
            done: { _, directory throws in
                let box = directory.sub("maildir/alice@example.com")
                #expect(filesBelow("\(box)/new") == ["e1"])
                #expect(try String(contentsOfFile: "\(box)/new/e1", encoding: .utf8) == message)
            },
            names: { error, code in "\(error)".contains(String(cString: strerror(code))) }))
    }

    /// Creating a spool's layout (what the first program on a new spool does).
    @Test func spoolCreation() throws {
        try run(Scenario(
            operation: { spool, directory throws in
                var configuration = Spool.Configuration()
                configuration.calls = spool.configuration.calls
                let created = try Spool(path: directory.sub("second"), create: true, configuration: configuration)
                _ = try created.queue(Self.work)
                _ = try RecordDirectory(spool: created, path: "intake/keys")
            },
            unchanged: { _, _ throws in },
            done: { _, directory throws in
                var isDirectory: ObjCBool = false
                #expect(FileManager.default.fileExists(atPath: directory.sub("second/queues/work/ready"), isDirectory: &isDirectory))
                #expect(FileManager.default.fileExists(atPath: directory.sub("second/intake/keys"), isDirectory: &isDirectory))
            }))
    }
}
