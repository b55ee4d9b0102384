import Foundation
import Synchronization
import Testing
@testable import Spool

/// The append checkpoint in `journal/lock` (issue 9): a process that opens the journal to append
/// one record reads nothing of the live segment when the checkpoint vouches for it, and trusts
/// it in no other case.
@Suite struct JournalCheckpointTests {
    private func event(_ index: Int) -> [UInt8] {
        Array(#"{"at":1,"document":"{}","entity":"req-\#(index)","keys":{},"state":"received","version":1}"#.utf8)
    }

    private func livePath(_ directory: TemporaryDirectory, _ sequence: UInt64) -> String {
        directory.sub("spool/journal/\(JournalSegment.activeName(sequence))")
    }

    /// Counts the `read` and `list` calls of a spool opened on `directory` after `body` starts.
    private func countingReadsAndLists(_ directory: TemporaryDirectory, _ body: (Spool) throws -> Void) throws -> (reads: Int, lists: Int) {
        let counts = Mutex((reads: 0, lists: 0))
        var calls = FileSystemCalls.live
        let live = FileSystemCalls.live
        calls.read = { fd, buffer throws(SystemCallError) in
            counts.withLock { $0.reads += 1 }
            return try live.read(fd, buffer)
        }
        calls.list = { fd throws(SystemCallError) in
            counts.withLock { $0.lists += 1 }
            return try live.list(fd)
        }
        var configuration = Spool.Configuration()
        configuration.calls = calls
        let spool = try Spool(path: directory.sub("spool"), create: false, configuration: configuration)
        counts.withLock { $0 = (0, 0) }
        try body(spool)
        return counts.withLock { $0 }
    }

    @Test func aFreshAppenderReadsNothingOfACheckpointedSegment() throws {
        let (directory, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        for index in 0..<200 { try journal.append([event(index)], durability: .durable) }
        let counted = try countingReadsAndLists(directory) { spool in
            try Journal(spool: spool).append([event(200)], durability: .durable)
        }
        #expect(counted.reads == 0 && counted.lists == 0, "read \(counted.reads) times, listed \(counted.lists) times")
        #expect(try Journal(spool: spool).records().map(\.payload) == (0...200).map(event))
    }

    @Test func aCheckpointIsNotTrustedOnceTheSegmentChangedByAnyoneButAnAppender() throws {
        let (directory, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        var positions: [JournalPosition] = []
        for index in 0..<40 { positions.append(try journal.append([event(index)], durability: .durable)) }
        // A flipped byte in the middle, written in place: same size, new change time.
        let handle = try #require(FileHandle(forUpdatingAtPath: livePath(directory, positions[0].segment)))
        try handle.seek(toOffset: UInt64(positions[20].offset + 30))
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: UInt64(positions[20].offset + 30))
        try handle.write(contentsOf: Data([byte ^ 0x20]))
        try handle.close()

        let appender = try Journal(spool: spool)
        try appender.append([event(40)], durability: .durable)
        // Found and handled as without a checkpoint: a copy kept, the segment sealed as it is.
        #expect(filesBelow(directory.sub("spool/corrupt")).contains { $0.hasPrefix("journal.\(JournalSegment.activeName(positions[0].segment)).") })
        #expect(FileManager.default.fileExists(atPath: directory.sub("spool/journal/\(JournalSegment.sealedName(positions[0].segment))")))
        let result = try Journal(spool: spool).read { _ in }
        #expect(result.damage.count == 1)
        #expect(try Journal(spool: spool).records().map(\.payload) == (0...40).filter { $0 != 20 }.map(event))
    }

    @Test func aTornTailAfterTheCheckpointIsCutAsBefore() throws {
        let (directory, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        for index in 0..<10 { try journal.append([event(index)], durability: .durable) }
        // Another writer dies in the middle of its append: half a frame after the checkpoint.
        let frame = JournalSegment.frame(event(99))
        let handle = try #require(FileHandle(forWritingAtPath: livePath(directory, 1)))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(frame.prefix(frame.count / 2)))
        try handle.close()

        try Journal(spool: spool).append([event(10)], durability: .durable)
        #expect(try Journal(spool: spool).records().map(\.payload) == (0...10).map(event))
        #expect(filesBelow(directory.sub("spool/corrupt")).contains { $0.contains(".torn-at-") })
    }

    @Test func aCheckpointOfASegmentWhoseSealWasInterruptedIsNotUsed() throws {
        let (directory, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        for index in 0..<10 { try journal.append([event(index)], durability: .durable) }
        // A seal that crashed after writing `<seq>.log.z`: the checkpoint still names `<seq>.log`.
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: livePath(directory, 1))))
        try Data(Zlib.compress(bytes)).write(to: URL(fileURLWithPath: directory.sub("spool/journal/\(JournalSegment.sealedName(1))")))

        let position = try Journal(spool: spool).append([event(10)], durability: .durable)
        #expect(position.segment == 2, "appended to a sealed segment")
        #expect(!FileManager.default.fileExists(atPath: livePath(directory, 1)))
        #expect(try Journal(spool: spool).records().map(\.payload) == (0...10).map(event))
    }

    @Test func aDamagedOrForeignCheckpointFallsBackToReadingTheSegment() throws {
        let (directory, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        for index in 0..<10 { try journal.append([event(index)], durability: .durable) }
        let lock = directory.sub("spool/journal/lock")
        var text = try String(contentsOfFile: lock, encoding: .utf8)
        // A different size claimed, with the checksum left as it was: not decoded.
        text = text.replacingOccurrences(of: " 1 ", with: " 2 ")
        try text.write(toFile: lock, atomically: false, encoding: .utf8)
        #expect(JournalCheckpoint.decode(Array(text.utf8)[...]) == nil)

        let counted = try countingReadsAndLists(directory) { spool in
            try Journal(spool: spool).append([event(10)], durability: .durable)
        }
        #expect(counted.lists > 0 && counted.reads > 0, "the segment was validated")
        #expect(try Journal(spool: spool).records().map(\.payload) == (0...10).map(event))
    }

    @Test func theCheckpointRoundTripsAndRejectsAnyFlippedByte() throws {
        var status = stat()
        status.st_dev = 2049
        status.st_ino = 123_456
        status.st_size = 4096
        status.st_ctim.tv_sec = 1_795_000_000
        status.st_ctim.tv_nsec = 999_999_999
        let checkpoint = JournalCheckpoint(sequence: 7, validEnd: 4096, createdAt: 1_795_000_000_123, status: status)
        let bytes = checkpoint.encoded()
        #expect(JournalCheckpoint.decode(bytes[...]) == checkpoint)
        #expect(JournalCheckpoint.decode((bytes + Array("leftover of a longer record\n".utf8))[...]) == checkpoint)
        #expect(checkpoint.matches(status))
        for index in 0..<(bytes.count - 1) {
            for bit in 0..<8 {
                var damaged = bytes
                damaged[index] ^= UInt8(1 << bit)
                #expect(JournalCheckpoint.decode(damaged[...]) == nil, "byte \(index) bit \(bit)")
            }
        }
    }
}
