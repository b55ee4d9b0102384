import Foundation
import Testing
@testable import Spool

/// An attack on the sampled admission check (issue 9, engineer `adversary`): the consumer does
/// not take items evenly from the buckets. ``Queue`` claims every due item of one bucket, then
/// moves to the next, so while the allocator drains a large backlog what is left lies in a run
/// of consecutive buckets (those its cursor has not reached yet). Buckets listed in a uniformly
/// random order miss such a run often enough to take a backlog at the mark for one far below it
/// (about 1 in 8 checks for 1,000 items left in 40 consecutive buckets), where the documented
/// bound is 3 × 10⁻⁸ per check.
@Suite struct BacklogDrainOrderTests {
    /// A queue whose backlog is `perBucket` entries in each of the `run` consecutive buckets that
    /// start at `first` (wrapping), and nothing elsewhere: a queue partly drained by its consumer.
    private func drainedQueue(first: Int, run: Int, perBucket: Int) throws -> (TemporaryDirectory, Queue) {
        let (directory, spool) = try makeSpool()
        let queue = try spool.queue(.allocation)
        for step in 0..<run {
            let bucket = directory.sub("spool/queues/allocation/ready/\(ItemID.bucketName((first + step) % Queue.bucketCount))")
            try FileManager.default.createDirectory(atPath: bucket, withIntermediateDirectories: true)
            for index in 0..<perBucket {
                #expect(FileManager.default.createFile(atPath: "\(bucket)/item-\(index)", contents: Data()))
            }
        }
        return (directory, queue)
    }

    @Test(arguments: [(first: 0, run: 40, perBucket: 25), (first: 200, run: 40, perBucket: 25), (first: 17, run: 36, perBucket: 28)])
    func aBacklogLeftInConsecutiveBucketsIsSeenAtTheMark(first: Int, run: Int, perBucket: Int) throws {
        let (_, queue) = try drainedQueue(first: first, run: run, perBucket: perBucket)
        #expect(try queue.backlog(limit: 1000) >= 1000)
        var missed = 0
        for _ in 0..<200 where try queue.boundedBacklog(limit: 1000) < 1000 { missed += 1 }
        #expect(missed == 0, "\(missed) of 200 checks took a backlog at the mark for one below it")
    }

    @Test func aBacklogLeftInConsecutiveBucketsIsSeenAtTheLowWaterMark() throws {
        // The half-open probe (low-water mark 500): 2,000 items left in 40 buckets.
        let (_, queue) = try drainedQueue(first: 90, run: 40, perBucket: 50)
        var missed = 0
        for _ in 0..<200 where try queue.boundedBacklog(limit: 500) < 500 { missed += 1 }
        #expect(missed == 0, "\(missed) of 200 probes took a backlog of 2,000 for one below 500")
    }
}
