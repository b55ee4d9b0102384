import Foundation
import Testing
@testable import Spool

@Suite struct JournalTests {
    private func smallSegments(_ bytes: Int = 512) -> Journal.Configuration {
        var configuration = Journal.Configuration()
        configuration.maxSegmentBytes = bytes
        return configuration
    }

    @Test func recordsComeBackInOrderAcrossRotatedCompressedSegments() throws {
        let (directory, spool) = try makeSpool()
        let journal = try Journal(spool: spool, configuration: smallSegments())
        let payloads = (0..<300).map { Array("event number \($0) with some repetitive text text text".utf8) }
        for (index, payload) in payloads.enumerated() {
            try journal.append([payload], durability: index % 10 == 0 ? .durable : .buffered)
        }
        try journal.sync()
        let files = filesBelow(directory.sub("spool/journal"))
        let sealed = files.filter { $0.hasSuffix(".log.z") }
        #expect(sealed.count > 5)
        #expect(files.filter { $0.hasSuffix(".log") }.count == 1, "exactly one live segment")
        // Sealed segments really are zlib-compressed, and smaller than what they hold.
        let first = try Data(contentsOf: URL(fileURLWithPath: directory.sub("spool/journal/\(sealed[0])")))
        #expect(first.first == 0x78)
        let inflated = try Zlib.decompress(Array(first), limit: 1 << 20)
        #expect(inflated.count > first.count)

        let records = try journal.records()
        #expect(records.map(\.payload) == payloads)
        // Resuming from any record's `next` gives exactly the rest.
        let middle = records[137]
        #expect(try journal.records(from: middle.next).map(\.payload) == Array(payloads[138...]))
        // A second journal object (another process) sees the same.
        #expect(try Journal(spool: spool).records().map(\.payload) == payloads)
    }

    @Test func batchAppendIsOneGroupOfConsecutiveRecords() throws {
        let (_, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        let position = try journal.append([[1], [2, 2], [3, 3, 3]], durability: .durable)
        let records = try journal.records()
        #expect(records.map(\.payload) == [[1], [2, 2], [3, 3, 3]])
        #expect(records[0].position == position)
    }

    @Test func ageRotatesTheSegment() throws {
        let (directory, spool) = try makeSpool()
        var configuration = Journal.Configuration()
        configuration.maxSegmentAge = .milliseconds(50)
        let journal = try Journal(spool: spool, configuration: configuration)
        try journal.append([[1]], durability: .durable)
        usleep(80_000)
        try journal.append([[2]], durability: .durable)
        #expect(filesBelow(directory.sub("spool/journal")).filter { $0.hasSuffix(".log.z") }.count == 1)
        #expect(try journal.records().map(\.payload) == [[1], [2]])
    }

    /// Truncates the live segment at every byte offset inside its last record: on reopen, every
    /// earlier record survives, the torn one is cut away, and appends continue cleanly.
    @Test func tornTailIsCutBackToTheLastWholeRecord() throws {
        let (directory, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        let earlier = (0..<5).map { Array("record-\($0)".utf8) }
        for payload in earlier { try journal.append([payload], durability: .durable) }
        let lastPosition = try journal.append([Array("the last record, torn by a crash".utf8)], durability: .durable)
        let segment = directory.sub("spool/journal/\(JournalSegment.activeName(lastPosition.segment))")
        let whole = try Data(contentsOf: URL(fileURLWithPath: segment))
        #expect(whole.count > lastPosition.offset)

        for cut in lastPosition.offset..<whole.count {
            try whole.prefix(cut).write(to: URL(fileURLWithPath: segment))
            // A reader never sees the torn record, and never modifies the file.
            #expect(try Journal(spool: spool).records().map(\.payload) == earlier)
            #expect(try Data(contentsOf: URL(fileURLWithPath: segment)).count == cut)
            // An appender cuts the tail, then appends after the last whole record.
            let appender = try Journal(spool: spool)
            try appender.append([[0xAB]], durability: .buffered)
            #expect(try appender.records().map(\.payload) == earlier + [[0xAB]], "cut at byte \(cut)")
        }
    }

    @Test func garbageAfterTheLastRecordIsCut() throws {
        let (directory, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        let position = try journal.append([[1, 2, 3]], durability: .durable)
        let path = directory.sub("spool/journal/\(JournalSegment.activeName(position.segment))")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3, 4, 5, 6, 7, 8, 9]))
        try handle.close()
        try Journal(spool: spool).append([[4]], durability: .durable)
        #expect(try journal.records().map(\.payload) == [[1, 2, 3], [4]])
    }

    @Test func interruptedSealIsFinishedOnOpen() throws {
        let (directory, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        let position = try journal.append([[1], [2]], durability: .durable)
        // Simulate a crash after the compressed copy was written but before the live file was
        // removed and the next segment started.
        let live = directory.sub("spool/journal/\(JournalSegment.activeName(position.segment))")
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: live)))
        try Data(Zlib.compress(bytes)).write(to: URL(fileURLWithPath: directory.sub("spool/journal/\(JournalSegment.sealedName(position.segment))")))
        let reopened = try Journal(spool: spool)
        try reopened.append([[3]], durability: .durable)
        #expect(try reopened.records().map(\.payload) == [[1], [2], [3]])
        #expect(!FileManager.default.fileExists(atPath: live))
    }

    @Test func severalProcessesAppendWithoutInterleaving() throws {
        let (directory, spool) = try makeSpool()
        _ = try Journal(spool: spool)
        let writers = try (0..<3).map { index in
            try ChildProcess("spool-exerciser", ["journal-append", directory.sub("spool"), "300", "writer\(index)"])
        }
        for writer in writers {
            let result = writer.finish()
            #expect(result.status == 0, "\(result.errors)")
        }
        let texts = try Journal(spool: spool).records().map { String(decoding: $0.payload, as: UTF8.self) }
        #expect(texts.count == 900)
        for index in 0..<3 {
            let own = texts.filter { $0.hasPrefix("writer\(index)-") }
            #expect(own == (0..<300).map { "writer\(index)-\($0)" }, "each writer's records whole and in its order")
        }
    }
}
