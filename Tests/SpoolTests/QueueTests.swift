import Foundation
import Testing
@testable import Spool

@Suite struct QueueTests {
    let queueName = QueueName("work")

    @Test func enqueueClaimAcknowledge() throws {
        let (directory, spool) = try makeSpool()
        let queue = try spool.queue(queueName)
        let id = try queue.enqueue(Array("hello".utf8))
        #expect(try queue.counts().ready == 1)
        // Whole file in its bucket, nothing left in tmp/.
        let files = filesBelow(directory.sub("spool/queues/work/ready"))
        #expect(files == ["\(id.bucket)/\(id).0.0"])
        #expect(filesBelow(directory.sub("spool/tmp")).isEmpty)

        let item = try #require(try queue.claimNext(lease: .seconds(30)))
        #expect(item.id == id)
        #expect(item.payload == Array("hello".utf8))
        #expect(item.attempts == 0)
        #expect(try queue.claimNext(lease: .seconds(30)) == nil)
        #expect(try queue.counts() == QueueCounts(ready: 0, deferred: 0, active: 1, dead: 0))
        try queue.acknowledge(item)
        #expect(try queue.counts() == QueueCounts())
        #expect(throws: SpoolError.leaseLost(id: id.rawValue)) { try queue.acknowledge(item) }
    }

    @Test func claimsInIdOrderWithinTheQueue() throws {
        let (_, spool) = try makeSpool()
        let queue = try spool.queue(queueName)
        var ids: [ItemID] = []
        for index in 0..<50 {
            ids.append(try queue.enqueue([UInt8(index)], id: ItemID(String(format: "item-%03d", index))!))
        }
        var claimed: [ItemID] = []
        while let item = try queue.claimNext(lease: .seconds(30)) {
            claimed.append(item.id)
            try queue.acknowledge(item)
        }
        #expect(claimed.sorted() == ids)
    }

    @Test func deferBacksOffThenDeadLetters() throws {
        let (_, spool) = try makeSpool()
        let queue = try spool.queue(queueName, retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(400), maxDelay: .seconds(1)))
        let id = try queue.enqueue([1, 2, 3])

        var item = try #require(try queue.claimNext(lease: .seconds(30)))
        let first = try queue.retryLater(item, error: "smtp timeout")
        guard case .retryAt(let due) = first else { Issue.record("expected a retry"); return }
        #expect(due > Clock.nowMilliseconds())
        #expect(try queue.claimNext(lease: .seconds(30)) == nil, "not due yet")
        #expect(try queue.counts().deferred == 1)
        #expect(queue.nextDueTime != nil)
        try waitUntil { try queue.claim(id: id, lease: .seconds(30)) }.map { item = $0 }
        #expect(item.attempts == 1)

        #expect(try queue.retryLater(item, error: "smtp timeout again") != .deadLettered)
        item = try #require(try waitUntil { try queue.claimNext(lease: .seconds(30)) })
        #expect(item.attempts == 2)
        #expect(try queue.retryLater(item, error: "mailbox full") == .deadLettered)

        #expect(try queue.deadLetters() == [DeadLetter(id: id, attempts: 3, lastError: "mailbox full")])
        #expect(try queue.counts() == QueueCounts(ready: 0, deferred: 0, active: 0, dead: 1))

        try queue.retryDeadLetter(id)
        #expect(try queue.deadLetters().isEmpty)
        item = try #require(try queue.claimNext(lease: .seconds(30)))
        #expect(item.attempts == 0)
        #expect(try queue.retryLater(item, error: "x") != .deadLettered)
        #expect(throws: SpoolError.notFound("dead item \(id) in queue work")) { try queue.purgeDeadLetter(id) }
    }

    @Test func purgeRemovesDeadItemAndError() throws {
        let (directory, spool) = try makeSpool()
        let queue = try spool.queue(queueName, retry: RetryPolicy(maxAttempts: 1))
        let id = try queue.enqueue([9])
        let item = try #require(try queue.claimNext(lease: .seconds(30)))
        #expect(try queue.retryLater(item, error: "bad") == .deadLettered)
        #expect(filesBelow(directory.sub("spool/queues/work/dead")).count == 2)
        try queue.purgeDeadLetter(id)
        #expect(filesBelow(directory.sub("spool/queues/work/dead")).isEmpty)
    }

    @Test func expiredLeaseIsReclaimedAndTheOldHolderLosesIt() throws {
        let (_, spool) = try makeSpool()
        let queue = try spool.queue(queueName)
        let id = try queue.enqueue([7])
        let stale = try #require(try queue.claimNext(lease: .milliseconds(1)))
        #expect(try queue.reclaimExpiredLeases(now: Clock.nowMilliseconds() + 10) == [id])
        let fresh = try #require(try queue.claimNext(lease: .seconds(30)))
        #expect(fresh.id == id)
        #expect(fresh.attempts == 1, "an expired lease counts as an attempt")
        #expect(throws: SpoolError.leaseLost(id: id.rawValue)) { try queue.acknowledge(stale) }
        var renewed = stale
        #expect(throws: SpoolError.leaseLost(id: id.rawValue)) { try queue.renew(&renewed, lease: .seconds(5)) }
        try queue.acknowledge(fresh)
    }

    @Test func liveLeaseIsNotReclaimedAndCanBeRenewed() throws {
        let (_, spool) = try makeSpool()
        let queue = try spool.queue(queueName)
        try queue.enqueue([7])
        var item = try #require(try queue.claimNext(lease: .milliseconds(200)))
        try queue.renew(&item, lease: .seconds(60))
        #expect(try queue.reclaimExpiredLeases(now: Clock.nowMilliseconds() + 1000).isEmpty)
        try queue.release(item)
        let again = try #require(try queue.claimNext(lease: .seconds(5)))
        #expect(again.attempts == 0, "a release does not count as an attempt")
    }

    @Test func corruptFilesAreQuarantinedAndDoNotStallTheQueue() throws {
        let (directory, spool) = try makeSpool()
        let queue = try spool.queue(queueName)
        let good = try queue.enqueue(Array("good".utf8))
        let bucket = directory.sub("spool/queues/work/ready/00")
        try FileManager.default.createDirectory(atPath: bucket, withIntermediateDirectories: true)
        // Garbage, a truncated item, a wrong version, a bad name, an oversize item.
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: "\(bucket)/garbage1.0.0"))
        var truncated = ItemFile(id: ItemID("trunc1")!, enqueuedAt: 1, payload: Array(repeating: 1, count: 100)).encoded()
        truncated.removeLast(10)
        try Data(truncated).write(to: URL(fileURLWithPath: "\(bucket)/trunc1.0.0"))
        try Data("spool-item 2\nid v2\n\n".utf8).write(to: URL(fileURLWithPath: "\(bucket)/v2.0.0"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: "\(bucket)/no-dots-here"))
        let big = ItemFile(id: ItemID("big1")!, enqueuedAt: 1, payload: Array(repeating: 0, count: (1 << 20) + 8192)).encoded()
        try Data(big).write(to: URL(fileURLWithPath: "\(bucket)/big1.0.0"))

        var claimed: [ItemID] = []
        while let item = try queue.claimNext(lease: .seconds(5)) {
            claimed.append(item.id)
            try queue.acknowledge(item)
        }
        #expect(claimed == [good])
        #expect(filesBelow(directory.sub("spool/corrupt")).count == 5)
        #expect(filesBelow(bucket).isEmpty)
    }

    @Test func symlinksInTheSpoolAreRefused() throws {
        let (directory, spool) = try makeSpool()
        let queue = try spool.queue(queueName)
        let outside = directory.sub("outside")
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try Data("secret".utf8).write(to: URL(fileURLWithPath: "\(outside)/secret"))

        // A symlink planted as an item is quarantined, never read through.
        let bucket = directory.sub("spool/queues/work/ready/01")
        try FileManager.default.createDirectory(atPath: bucket, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(bucket)/evil.0.0", withDestinationPath: "\(outside)/secret")
        #expect(try queue.claimNext(lease: .seconds(5)) == nil)
        #expect(filesBelow(directory.sub("spool/corrupt")).count == 1)
        #expect(FileManager.default.fileExists(atPath: "\(outside)/secret"))

        // A bucket directory replaced by a symlink: enqueue into it is refused.
        let id = ItemID.generate()
        let target = directory.sub("spool/queues/work/ready/\(id.bucket)")
        try? FileManager.default.removeItem(atPath: target)
        try FileManager.default.createSymbolicLink(atPath: target, withDestinationPath: outside)
        #expect(throws: SpoolError.unsafePath("queues/work/ready/\(id.bucket)")) { try queue.enqueue([1], id: id) }
        #expect(filesBelow(outside) == ["secret"])

        // A queue directory that is a symlink is refused at open.
        let queues = directory.sub("spool/queues")
        try FileManager.default.createSymbolicLink(atPath: "\(queues)/linked", withDestinationPath: outside)
        #expect(throws: SpoolError.unsafePath("queues/linked")) { _ = try spool.queue(QueueName("linked")) }

        // Names with path tricks never pass validation.
        #expect(ItemID("../etc") == nil)
        #expect(ItemID("a/b") == nil)
        #expect(ItemID(".hidden") == nil)
        #expect(QueueName(validating: "..") == nil)
    }

    @Test func oversizePayloadIsRefusedWithNothingWritten() throws {
        let (directory, spool) = try makeSpool(maxItemBytes: 16)
        let queue = try spool.queue(queueName)
        #expect(throws: SpoolError.tooLarge(size: 17, limit: 16)) { try queue.enqueue(Array(repeating: 0, count: 17)) }
        #expect(filesBelow(directory.sub("spool/queues")).isEmpty)
    }

    /// `wait` returns true only for an inotify event (a timeout returns false), so waking at all
    /// proves the arrival woke it; the latency bound is loose, for a busy machine.
    @Test func watcherWakesOnAnArrivalAndSleepsOtherwise() throws {
        let (_, spool) = try makeSpool()
        let queue = try spool.queue(queueName)
        let watcher = try QueueWatcher(queue: queue)
        let idleStart = ContinuousClock.now
        #expect(watcher.wait(timeout: .milliseconds(150)) == false)
        #expect(ContinuousClock.now - idleStart >= .milliseconds(140))

        let producer = try spool.queue(queueName)
        let enqueued = ContinuousClock.now
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { _ = try? producer.enqueue([1]) }
        #expect(watcher.wait(timeout: .seconds(30)))
        #expect(ContinuousClock.now - enqueued < .seconds(10))
        #expect(try queue.claimNext(lease: .seconds(5)) != nil)
    }

    @Test func aRetrySeenByTheWatcherIsNotClaimedBeforeItIsDue() throws {
        let (_, spool) = try makeSpool()
        let queue = try spool.queue(queueName, retry: RetryPolicy(baseDelay: .seconds(30)))
        let watcher = try QueueWatcher(queue: queue)
        try queue.enqueue([1])
        #expect(watcher.wait(timeout: .seconds(5)))
        let item = try #require(try queue.claimNext(lease: .seconds(5)))
        _ = try queue.retryLater(item, error: "later")
        #expect(watcher.wait(timeout: .seconds(5)), "the retry's rename is an arrival")
        #expect(try queue.claimNext(lease: .seconds(5)) == nil)
        #expect(queue.nextDueTime.map { $0 > Clock.nowMilliseconds() + 10_000 } == true)
    }

    @Test func stagingDebrisIsSwept() throws {
        let (directory, spool) = try makeSpool()
        try Data("half".utf8).write(to: URL(fileURLWithPath: directory.sub("spool/tmp/crashed")))
        #expect(try spool.sweepStaging() == 0, "too young to be debris")
        #expect(try spool.sweepStaging(now: Clock.nowMilliseconds() + 2 * 3_600_000) == 1)
        #expect(filesBelow(directory.sub("spool/tmp")).isEmpty)
    }

    @Test func formatVersionIsChecked() throws {
        let (directory, _) = try makeSpool()
        try Data("spool-format 9\n".utf8).write(to: URL(fileURLWithPath: directory.sub("spool/format")))
        #expect(throws: SpoolError.unsupportedFormat("spool-format 9")) { _ = try Spool(path: directory.sub("spool")) }
        #expect(throws: SpoolError.notFound("spool root \(directory.sub("missing"))")) { _ = try Spool(path: directory.sub("missing")) }
    }

    /// Polls `body` for up to 5 s until it returns a value.
    private func waitUntil<T>(_ body: () throws -> T?) throws -> T? {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if let value = try body() { return value }
            usleep(10_000)
        }
        return nil
    }
}
