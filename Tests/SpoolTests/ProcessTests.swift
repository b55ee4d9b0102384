import Foundation
import Testing
@testable import Spool

/// Tests that run the spool in separate processes (`spool-exerciser`), as the daemons will.
@Suite(.serialized) struct ProcessTests {
    /// Writes `count` items straight into the documented layout (test set-up only: the real
    /// enqueue path, with its two fsyncs per item, is exercised everywhere else).
    private func seed(_ spool: Spool, queue name: String, count: Int) throws -> Set<ItemID> {
        let queue = try spool.queue(QueueName(name))
        var ids = Set<ItemID>()
        for index in 0..<count {
            let id = ItemID.generate()
            let file = ItemFile(id: id, enqueuedAt: Clock.nowMilliseconds(), payload: Array("payload \(index)".utf8))
            let bucket = "\(spool.path)/queues/\(name)/ready/\(id.bucket)"
            if index < 256 { _ = try queue.bucket(id.bucket) }
            try Data(file.encoded()).write(to: URL(fileURLWithPath: "\(bucket)/\(id).0.0"))
            ids.insert(id)
        }
        return ids
    }

    @Test func twoConsumerProcessesAcknowledgeEachOfTenThousandItemsExactlyOnce() throws {
        let (directory, spool) = try makeSpool()
        for index in 0..<256 { _ = try spool.queue(QueueName("work")).bucket(ItemID.bucketName(index)) }
        let ids = try seed(spool, queue: "work", count: 10_000)
        let marks = directory.sub("marks")
        try FileManager.default.createDirectory(atPath: marks, withIntermediateDirectories: true)

        let consumers = try (0..<2).map { _ in
            try ChildProcess("spool-exerciser", ["consume", spool.path, "work", marks, "1500"])
        }
        let results = consumers.map { $0.finish() }
        for result in results { #expect(result.status == 0, "\(result.errors.suffix(500))") }
        let acked = results.flatMap { $0.output.split(separator: "\n").map(String.init) }
        #expect(acked.count == 10_000, "each item acknowledged exactly once")
        #expect(Set(acked) == Set(ids.map(\.rawValue)))
        #expect(results.allSatisfy { !$0.output.isEmpty }, "both consumers took part")
        #expect(try spool.queue(QueueName("work")).counts() == QueueCounts())
    }

    /// A producer is killed with SIGKILL at random moments, 100 times. Every id it reported as
    /// enqueued (reported only after `enqueue` returned) is present and whole; nothing partial is
    /// ever visible in the queue (no file has to be quarantined).
    @Test func enqueueSurvivesSIGKILLAtRandomMoments() throws {
        let (_, spool) = try makeSpool()
        var reported: [String: (size: Int, crc: String)] = [:]
        for _ in 0..<100 {
            let producer = try ChildProcess("spool-exerciser", ["enqueue-loop", spool.path, "crash"])
            // Kill at a random moment of the enqueue loop, not of process start-up: on a busy
            // machine start-up alone can take longer than the random delay (then no work is done
            // and the count below fails for want of a condition, not of durability).
            let started = ContinuousClock.now
            while !producer.outputSoFar().contains("\n"), producer.process.isRunning,
                  ContinuousClock.now - started < .seconds(20) { usleep(1_000) }
            usleep(UInt32.random(in: 2_000...40_000))
            kill(producer.process.processIdentifier, SIGKILL)
            let result = producer.finish()
            #expect(producer.process.terminationReason == .uncaughtSignal)
            for line in result.output.split(separator: "\n") {
                let fields = line.split(separator: " ")
                // A line cut by the kill is not a report.
                guard fields.count == 3, let size = Int(fields[1]) else { continue }
                reported[String(fields[0])] = (size, String(fields[2]))
            }
        }
        #expect(reported.count > 50, "the producer got some work done between kills")

        let queue = try spool.queue(QueueName("crash"))
        var found: [String: [UInt8]] = [:]
        while let item = try queue.claimNext(lease: .seconds(60)) {
            found[item.id.rawValue] = item.payload
            try queue.acknowledge(item)
        }
        #expect(filesBelow("\(spool.path)/corrupt").isEmpty, "nothing partial was ever visible")
        for (id, expected) in reported {
            let payload = try #require(found[id], "reported id \(id) is missing")
            #expect(payload.count == expected.size)
            #expect(String(CRC32.checksum(payload), radix: 16) == expected.crc)
        }
        // Debris of killed writers stays in tmp/, invisible, until swept.
        try spool.sweepStaging(now: Clock.nowMilliseconds() + 2 * 3_600_000)
        #expect(filesBelow("\(spool.path)/tmp").isEmpty)
    }

    @Test func itemHeldByAKilledProcessIsReclaimedAtOnce() throws {
        let (_, spool) = try makeSpool()
        let queue = try spool.queue(QueueName("held"))
        let id = try queue.enqueue(Array("x".utf8))
        let holder = try ChildProcess("spool-exerciser", ["hold", spool.path, "held"])
        // Wait for the claim (the lease is an hour long).
        let deadline = ContinuousClock.now + .seconds(20)
        while try queue.counts().active == 0, ContinuousClock.now < deadline { usleep(10_000) }
        #expect(try queue.reclaimExpiredLeases().isEmpty, "the holder is alive")
        kill(holder.process.processIdentifier, SIGKILL)
        _ = holder.finish()
        #expect(try queue.reclaimExpiredLeases() == [id], "its process is provably gone: no need to wait an hour")
        let item = try #require(try queue.claimNext(lease: .seconds(5)))
        #expect(item.id == id)
        #expect(item.attempts == 1)
    }
}

