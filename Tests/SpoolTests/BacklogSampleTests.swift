import Foundation
import Synchronization
import Testing
@testable import Spool

/// The admission check's backlog (issue 9): constant cost while the queue is far below the
/// limit, exact near it, never below the limit when the backlog reached it.
@Suite struct BacklogSampleTests {
    /// A queue whose ready buckets hold `count` entries named for random ids (as enqueued ones
    /// are: the bucket is a hash of the id), made without the cost of `count` durable enqueues.
    private func queue(holding count: Int, calls: FileSystemCalls = .live) throws -> (TemporaryDirectory, Queue) {
        let (directory, spool) = try makeSpool(calls: calls)
        let queue = try spool.queue(.allocation)
        for _ in 0..<count {
            let id = ItemID.generate()
            let bucket = directory.sub("spool/queues/allocation/ready/\(id.bucket)")
            try FileManager.default.createDirectory(atPath: bucket, withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: "\(bucket)/\(id.rawValue).0.0", contents: Data()))
        }
        return (directory, queue)
    }

    @Test(arguments: [1000, 1001, 1400])
    func aBacklogAtTheLimitIsAlwaysSeen(count: Int) throws {
        let (_, queue) = try queue(holding: count)
        for _ in 0..<40 {
            #expect(try queue.boundedBacklog(limit: 1000) >= 1000)
        }
        #expect(try queue.backlog(limit: 1000) >= 1000)
    }

    @Test func smallLimitsAreCountedExactly() throws {
        let (_, queue) = try queue(holding: 5)
        for _ in 0..<20 {
            #expect(try queue.boundedBacklog(limit: 5) == 5)
            #expect(try queue.boundedBacklog(limit: 6) == 5)
        }
    }

    @Test func aQueueFarBelowTheLimitIsNotListedWhole() throws {
        let opened = Mutex(Set<String>())
        var calls = FileSystemCalls.live
        let live = FileSystemCalls.live
        calls.open = { directory, name, flags, mode throws(SystemCallError) in
            if flags & O_DIRECTORY != 0, name.count == 2 { opened.withLock { _ = $0.insert(name) } }
            return try live.open(directory, name, flags, mode)
        }
        let (_, queue) = try queue(holding: 30, calls: calls)
        for _ in 0..<20 {
            opened.withLock { $0.removeAll() }
            #expect(try queue.boundedBacklog(limit: 1000) < 1000)
            let buckets = opened.withLock { $0.count }
            #expect(buckets < 64, "opened \(buckets) of 256 buckets")
        }
    }

    /// The rule alone: drawn without replacement from `limit` items spread over 256 buckets, the
    /// counts seen never make it stop (seeded; the bound is 10⁻¹⁰ per step).
    @Test func theStoppingRuleNeverStopsAtTheLimitInSimulation() {
        var generator = SeededGenerator(seed: 9)
        for limit in [47, 100, 200, 1000, 5000] {
            for _ in 0..<200 {
                var perBucket = [Int](repeating: 0, count: 256)
                for _ in 0..<limit { perBucket[Int.random(in: 0..<256, using: &generator)] += 1 }
                perBucket.shuffle(using: &generator)
                var seen = 0
                for (listed, count) in perBucket.enumerated() {
                    seen += count
                    #expect(!BacklogSample.isSurelyBelow(limit: limit, seen: seen, bucketsListed: listed + 1, bucketCount: 256))
                }
            }
        }
        #expect(BacklogSample.isSurelyBelow(limit: 1000, seen: 0, bucketsListed: 12, bucketCount: 256))
        #expect(!BacklogSample.isSurelyBelow(limit: 46, seen: 0, bucketsListed: 256, bucketCount: 256))
    }
}
