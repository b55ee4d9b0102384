import Foundation
import Synchronization
import Testing
@testable import Spool

/// Fault injection through the file-system seam: `EIO` and `ENOSPC` at every file-system call
/// of an operation in turn. The operation either throws a specific error naming the injected
/// `errno` and leaves nothing half-written visible, or (for a failing cleanup call it can
/// tolerate) succeeds completely; either way, a retry afterwards succeeds.
@Suite struct FaultTests {
    /// One operation under test, on a spool whose calls go through `injector`.
    struct Scenario {
        /// Prepares the spool (faults disarmed).
        var prepare: (Spool) throws -> Void = { _ throws in }
        /// The operation; throws what it throws.
        var operation: (Spool) throws -> Void
        /// Checks the state after the operation threw: as if it never ran.
        var unchanged: (Spool) throws -> Void
        /// Checks the state after the operation succeeded.
        var done: (Spool) throws -> Void
    }

    private func run(_ scenario: Scenario, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let injector = FaultInjector()
        func freshSpool() throws -> Spool {
            let directory = TemporaryDirectory()
            var configuration = Spool.Configuration()
            configuration.calls = FileSystemCalls.live.injecting(injector)
            let spool = try Spool(path: directory.sub("spool"), create: true, configuration: configuration)
            try scenario.prepare(spool)
            return spool
        }
        // Learn which calls the operation makes.
        let probe = try freshSpool()
        injector.arm()
        try scenario.operation(probe)
        let counts = injector.disarm().counts
        try scenario.done(probe)
        #expect(!counts.isEmpty, sourceLocation: sourceLocation)

        var threw = 0
        for (call, count) in counts.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            for occurrence in 1...count {
                for code in [EIO, ENOSPC] {
                    let spool = try freshSpool()
                    injector.arm(failing: call, occurrence: occurrence, errno: code)
                    let label = "\(call) #\(occurrence) errno \(code)"
                    do {
                        try scenario.operation(spool)
                        injector.disarm()
                        try scenario.done(spool)
                        continue
                    } catch let error as SpoolError {
                        let fired = injector.disarm().fired
                        #expect(fired, "\(label): failed without the fault firing: \(error)", sourceLocation: sourceLocation)
                        guard case .system(_, _, let cause) = error, cause.errno == code, cause.call == call else {
                            Issue.record("\(label): unspecific error \(error)", sourceLocation: sourceLocation)
                            continue
                        }
                        threw += 1
                    }
                    try scenario.unchanged(spool)
                    try scenario.operation(spool)
                    try scenario.done(spool)
                }
            }
        }
        #expect(threw > 0, "some injected faults must surface", sourceLocation: sourceLocation)
    }

    private static let work = QueueName("work")

    private static func visibleItems(_ spool: Spool) throws -> [String] {
        filesBelow("\(spool.path)/queues/work/ready") + filesBelow("\(spool.path)/queues/work/active").map { "active/\($0)" }
    }

    @Test func enqueue() throws {
        try run(Scenario(
            operation: { spool throws in try spool.queue(Self.work).enqueue(Array("payload".utf8), id: ItemID("item-1")!) },
            unchanged: { spool throws in
                #expect(try Self.visibleItems(spool).isEmpty)
                #expect(filesBelow("\(spool.path)/tmp").isEmpty, "the staged copy is removed")
            },
            done: { spool throws in
                let queue = try spool.queue(Self.work)
                #expect(try Self.visibleItems(spool).count == 1)
                let item = try #require(try queue.claimNext(lease: .seconds(5)))
                #expect(item.payload == Array("payload".utf8))
            }))
    }

    @Test func claim() throws {
        try run(Scenario(
            prepare: { spool throws in try spool.queue(Self.work).enqueue([1, 2, 3], id: ItemID("item-1")!) },
            operation: { spool throws in
                _ = try #require(try spool.queue(Self.work).claimNext(lease: .seconds(30)))
            },
            unchanged: { spool throws in
                #expect(try spool.queue(Self.work).counts() == QueueCounts(ready: 1))
            },
            done: { spool throws in
                #expect(try spool.queue(Self.work).counts() == QueueCounts(active: 1))
                #expect(filesBelow("\(spool.path)/corrupt").isEmpty, "an I/O error is not corruption")
            }))
    }

    @Test func acknowledge() throws {
        final class Held: @unchecked Sendable { var item: ClaimedItem?; var queue: Queue? }
        let held = Held()
        try run(Scenario(
            prepare: { spool throws in
                let queue = try spool.queue(Self.work)
                try queue.enqueue([1], id: ItemID("item-1")!)
                held.queue = queue
                held.item = try queue.claimNext(lease: .seconds(60))
            },
            operation: { _ throws in try held.queue!.acknowledge(held.item!) },
            unchanged: { spool throws in
                // Either still held, or removed but its removal not yet known durable: never
                // back in the queue for someone else.
                #expect(try spool.queue(Self.work).counts().ready == 0)
            },
            done: { spool throws in
                #expect(try spool.queue(Self.work).counts() == QueueCounts())
            }))
    }

    @Test func retryLater() throws {
        final class Held: @unchecked Sendable { var item: ClaimedItem?; var queue: Queue? }
        let held = Held()
        try run(Scenario(
            prepare: { spool throws in
                let queue = try spool.queue(Self.work, retry: RetryPolicy(maxAttempts: 2))
                try queue.enqueue([1], id: ItemID("item-1")!)
                held.queue = queue
                held.item = try queue.claimNext(lease: .seconds(60))
            },
            operation: { _ throws in _ = try held.queue!.retryLater(held.item!, error: "boom") },
            unchanged: { spool throws in #expect(try spool.queue(Self.work).counts().dead == 0) },
            done: { spool throws in #expect(try spool.queue(Self.work).counts().deferred == 1) }))
    }

    @Test func journalAppend() throws {
        try run(Scenario(
            prepare: { spool throws in try Journal(spool: spool).append([[1]], durability: .durable) },
            operation: { spool throws in try Journal(spool: spool).append([[2], [3]], durability: .durable) },
            unchanged: { spool throws in
                var clean = Spool.Configuration()
                clean.calls = .live
                #expect(try Journal(spool: Spool(path: spool.path, configuration: clean)).records().map(\.payload) == [[1]])
            },
            done: { spool throws in
                #expect(try Journal(spool: spool).records().map(\.payload) == [[1], [2], [3]])
            }))
    }

    @Test func journalAppendThatRotates() throws {
        var small = Journal.Configuration()
        small.maxSegmentBytes = 40
        try run(Scenario(
            prepare: { spool throws in try Journal(spool: spool, configuration: small).append([Array(repeating: 7, count: 40)], durability: .durable) },
            operation: { spool throws in try Journal(spool: spool, configuration: small).append([[2]], durability: .durable) },
            unchanged: { spool throws in
                #expect(try Journal(spool: spool).records().map(\.payload) == [Array(repeating: 7, count: 40)])
            },
            done: { spool throws in
                #expect(try Journal(spool: spool).records().map(\.payload) == [Array(repeating: 7, count: 40), [2]])
                #expect(filesBelow("\(spool.path)/journal").filter { $0.hasSuffix(".log.z") }.count == 1)
            }))
    }

    /// An append after another writer's torn tail: whatever call fails, the tail is never cut
    /// before its copy is in `corrupt/`, no record is lost, and a retry appends after `[1]`.
    @Test func journalAppendAfterATornTail() throws {
        func tornCopies(_ spool: Spool) -> [String] { filesBelow("\(spool.path)/corrupt").filter { $0.contains(".torn-at-") } }
        func liveSize(_ spool: Spool) throws -> Int {
            let name = try #require(try FileManager.default.contentsOfDirectory(atPath: "\(spool.path)/journal").first { $0.hasSuffix(".log") })
            return try Data(contentsOf: URL(fileURLWithPath: "\(spool.path)/journal/\(name)")).count
        }
        let torn = Data(JournalSegment.frame(Array("never acknowledged".utf8)).prefix(11))
        var sizeWithTear = 0
        try run(Scenario(
            prepare: { spool throws in
                let position = try Journal(spool: spool).append([[1]], durability: .durable)
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(spool.path)/journal/\(JournalSegment.activeName(position.segment))"))
                try handle.seekToEnd()
                try handle.write(contentsOf: torn)
                try handle.close()
                sizeWithTear = try liveSize(spool)
            },
            operation: { spool throws in try Journal(spool: spool).append([[2]], durability: .durable) },
            unchanged: { spool throws in
                #expect(try Journal(spool: spool).records().map(\.payload) == [[1]])
                if try liveSize(spool) < sizeWithTear { #expect(tornCopies(spool).count == 1, "cut without a copy") }
            },
            done: { spool throws in
                #expect(try Journal(spool: spool).records().map(\.payload) == [[1], [2]])
                #expect(tornCopies(spool).count == 1)
            }))
    }

    /// A new spool root is synced in its parent (an `fsync` of the parent follows the `mkdir`),
    /// and a failing sync fails the creation with the errno.
    @Test func newSpoolRootIsSyncedInItsParent() throws {
        let directory = TemporaryDirectory()
        let opened = Mutex<[Int32: String]>([:]), log = Mutex<[String]>([])
        var calls = FileSystemCalls.live
        calls.open = { dir, name, flags, mode throws(SystemCallError) in
            let fd = try FileSystemCalls.live.open(dir, name, flags, mode)
            if dir == AT_FDCWD { opened.withLock { $0[fd] = name } }
            return fd
        }
        calls.makeDirectory = { dir, name, mode throws(SystemCallError) in
            try FileSystemCalls.live.makeDirectory(dir, name, mode)
            if dir == AT_FDCWD { log.withLock { $0.append("mkdir \(name)") } }
        }
        calls.fsync = { fd throws(SystemCallError) in
            try FileSystemCalls.live.fsync(fd)
            if let name = opened.withLock({ $0[fd] }) { log.withLock { $0.append("fsync \(name)") } }
        }
        var configuration = Spool.Configuration()
        configuration.calls = calls
        _ = try Spool(path: directory.sub("spool"), create: true, configuration: configuration)
        let entries = log.withLock { $0 }
        #expect(entries.prefix(2) == ["mkdir \(directory.sub("spool"))", "fsync \(directory.path)"], "\(entries)")

        let injector = FaultInjector()
        configuration.calls = FileSystemCalls.live.injecting(injector)
        injector.arm(failing: .fsync, occurrence: 1, errno: EIO)
        let error = #expect(throws: SpoolError.self) { try Spool(path: directory.sub("other"), create: true, configuration: configuration) }
        #expect(error?.description.contains("sync parent of spool root") == true
                && error?.description.contains(String(cString: strerror(EIO))) == true, "\(String(describing: error))")
        injector.disarm()
    }
}
