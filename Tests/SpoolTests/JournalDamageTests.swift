import Foundation
import Testing
@testable import Spool

/// Damage to the journal never costs a valid record: flipped bytes, torn tails under a running
/// appender, damaged sealed segments (issue 7, items 4 to 6).
@Suite struct JournalDamageTests {
    private func event(_ index: Int) -> [UInt8] {
        IndexEvent(entity: "req-\(index)", version: 1000, state: "received", at: 1_700_000_000_000 + Int64(index),
                   keys: ["customer": "c\(index % 7)"], document: "{\"n\":\(index)}").encoded()
    }

    private func segmentPath(_ directory: TemporaryDirectory, _ name: String) -> String { directory.sub("spool/journal/\(name)") }

    private func flip(_ path: String, at offset: Int) throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[offset] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: path))
    }

    /// Item 4: one flipped byte in the middle of the live segment. The next appender used to cut
    /// everything after it; now it keeps a copy, seals the segment as it is and appends to a new one.
    @Test func flippedByteInTheLiveSegmentLosesOnlyItsRecord() throws {
        let (directory, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        var positions: [JournalPosition] = []
        for index in 0..<40 { positions.append(try journal.append([event(index)], durability: .buffered)) }
        let live = segmentPath(directory, JournalSegment.activeName(positions[0].segment))
        try flip(live, at: positions[20].offset + 20)

        let appender = try Journal(spool: spool)
        try appender.append([event(40)], durability: .durable)
        var payloads: [[UInt8]] = []
        let result = try Journal(spool: spool).read { payloads.append($0.payload) }
        #expect(payloads == (0..<41).filter { $0 != 20 }.map(event))
        #expect(result.damage.count == 1)
        let damage = try #require(result.damage.first)
        #expect(damage.entities == ["req-20"])
        #expect(damage.ranges.count == 1 && damage.ranges[0].start == positions[20].offset && damage.ranges[0].end == positions[21].offset)
        let copies = filesBelow(directory.sub("spool/corrupt"))
        #expect(copies.count == 1 && copies[0].hasPrefix("journal.\(JournalSegment.activeName(positions[0].segment))."))
        #expect(damage.copy == "corrupt/\(copies.first ?? "")")
        // The damaged segment was sealed as it was: appends go on in a fresh segment.
        #expect(FileManager.default.fileExists(atPath: segmentPath(directory, JournalSegment.sealedName(positions[0].segment))))
        #expect(try appender.append([event(41)], durability: .durable).segment == positions[0].segment + 1)
    }

    /// Item 5: a torn frame at the end of the live segment while a running appender (the
    /// daemon) holds it open. The daemon validates the new bytes before appending, so the next
    /// process to open the segment (a real one, the exerciser) finds nothing to cut.
    @Test func tornTailUnderARunningAppenderCostsNoRecord() throws {
        let (directory, spool) = try makeSpool()
        let daemon = try Journal(spool: spool)
        let first = try daemon.append([Array("daemon-0".utf8)], durability: .durable)
        // Another writer dies in the middle of its append: half a frame.
        let torn = JournalSegment.frame(Array("never acknowledged".utf8)).prefix(13)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: segmentPath(directory, JournalSegment.activeName(first.segment))))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(torn))
        try handle.close()
        for index in 1..<4 { try daemon.append([Array("daemon-\(index)".utf8)], durability: .durable) }

        let other = try ChildProcess("spool-exerciser", ["journal-append", directory.sub("spool"), "2", "other"]).finish()
        #expect(other.status == 0, "\(other.errors)")
        let texts = try Journal(spool: spool).records().map { String(decoding: $0.payload, as: UTF8.self) }
        #expect(texts == ["daemon-0", "daemon-1", "daemon-2", "daemon-3", "other-0", "other-1"])
        // The torn bytes were kept before they were cut.
        let copies = filesBelow(directory.sub("spool/corrupt"))
        #expect(copies.count == 1 && copies[0].contains(".torn-at-"))
        #expect(try Journal(spool: spool).read { _ in }.damage.isEmpty, "a torn tail is not damage")
    }

    private func sealedJournal() throws -> (TemporaryDirectory, Spool, [[UInt8]], [UInt64: [[UInt8]]]) {
        let (directory, spool) = try makeSpool()
        var configuration = Journal.Configuration()
        configuration.maxSegmentBytes = 8192
        let journal = try Journal(spool: spool, configuration: configuration)
        var all: [[UInt8]] = []
        var bySegment: [UInt64: [[UInt8]]] = [:]
        var generator = SeededGenerator(seed: 7)
        for index in 0..<200 {
            // Barely compressible, so the compressed stream is long and damage lands mid-segment.
            var payload = event(index)
            payload += (0..<60).map { _ in UInt8.random(in: 0x21...0x7E, using: &generator) }
            let position = try journal.append([payload], durability: .buffered)
            all.append(payload)
            bySegment[position.segment, default: []].append(payload)
        }
        try journal.sync()
        return (directory, spool, all, bySegment)
    }

    /// Item 6: a truncated sealed segment. Records before the cut come back; the damage is reported.
    @Test func truncatedSealedSegmentGivesBackWhatPrecedesTheCut() throws {
        let (directory, spool, all, bySegment) = try sealedJournal()
        let sequence: UInt64 = 2
        let path = segmentPath(directory, JournalSegment.sealedName(sequence))
        let compressed = try Data(contentsOf: URL(fileURLWithPath: path))
        try compressed.prefix(compressed.count / 2).write(to: URL(fileURLWithPath: path))

        var payloads: [[UInt8]] = []
        let result = try Journal(spool: spool).read { payloads.append($0.payload) }
        let mine = try #require(bySegment[sequence])
        let lost = Set(mine.map { $0 }).subtracting(payloads)
        #expect(!lost.isEmpty && lost.count < mine.count, "some records of the segment come back, not all")
        #expect(payloads == all.filter { !lost.contains($0) }, "every other record, in order")
        // What was read of the damaged segment is a prefix of it.
        #expect(Array(mine.prefix(mine.count - lost.count)) == payloads.filter { mine.contains($0) })
        #expect(result.damage.map(\.segment) == [JournalSegment.sealedName(sequence)])
        let copy = try #require(result.damage.first?.copy)
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory.sub("spool/\(copy)"))) == compressed.prefix(compressed.count / 2))
    }

    /// Item 6: a bit flip inside a sealed segment's zlib stream. Every other segment's records
    /// come back, the records of the damaged one that inflate intact too, and it is reported.
    @Test func flippedByteInASealedSegmentIsReported() throws {
        let (directory, spool, all, bySegment) = try sealedJournal()
        let sequence: UInt64 = 3
        let path = segmentPath(directory, JournalSegment.sealedName(sequence))
        let size = try Data(contentsOf: URL(fileURLWithPath: path)).count
        try flip(path, at: size * 2 / 3)

        var payloads: [[UInt8]] = []
        let result = try Journal(spool: spool).read { payloads.append($0.payload) }
        let mine = try #require(bySegment[sequence])
        let others = all.filter { !mine.contains($0) }
        #expect(payloads.filter { !mine.contains($0) } == others)
        #expect(payloads.filter { mine.contains($0) }.count > 0, "the records before the damage come back")
        #expect(result.damage.map(\.segment) == [JournalSegment.sealedName(sequence)])
        #expect(result.damage.first?.copy != nil)
    }

    /// Property: random records, one random byte flipped or the segment cut anywhere. What is read
    /// back is exactly every record whose frame bytes are intact; an appender afterwards loses
    /// nothing more; nothing crashes.
    @Test(arguments: 0..<6) func anySingleFlipOrCutLosesOnlyTheDamagedFrame(seed: Int) throws {
        var generator = SeededGenerator(seed: UInt64(seed) &+ 101)
        for _ in 0..<25 {
            let (directory, spool) = try makeSpool()
            let journal = try Journal(spool: spool)
            var frames: [(payload: [UInt8], range: Range<Int>)] = []
            for _ in 0..<Int.random(in: 1...30, using: &generator) {
                let payload = (0..<Int.random(in: 1...80, using: &generator)).map { _ in UInt8.random(in: 0x20...0x7E, using: &generator) }
                let position = try journal.append([payload], durability: .buffered)
                frames.append((payload, position.offset..<position.offset + JournalSegment.frameHeaderSize + payload.count))
            }
            let path = segmentPath(directory, JournalSegment.activeName(1))
            var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            let headerLength = frames[0].range.lowerBound
            let expected: [[UInt8]]
            if Bool.random(using: &generator) {
                let offset = Int.random(in: 0..<bytes.count, using: &generator)
                bytes[offset] ^= UInt8(1 << Int.random(in: 0..<8, using: &generator))
                expected = frames.filter { !$0.range.contains(offset) }.map(\.payload)
            } else {
                let cut = Int.random(in: headerLength..<bytes.count, using: &generator)
                bytes = bytes.prefix(cut)
                expected = frames.filter { $0.range.upperBound <= cut }.map(\.payload)
            }
            try bytes.write(to: URL(fileURLWithPath: path))
            #expect(try Journal(spool: spool).records().map(\.payload) == expected)
            let appender = try Journal(spool: spool)
            try appender.append([Array("after".utf8)], durability: .buffered)
            #expect(try Journal(spool: spool).records().map(\.payload) == expected + [Array("after".utf8)])
        }
    }

    /// Property: one random byte flipped, or the file cut, anywhere in a sealed `.log.z`: nothing
    /// crashes, every other segment's records come back in order, what comes back of the damaged
    /// one is some of its own records in order (never an invented one), and the damage is reported.
    @Test(arguments: 0..<4) func anyDamageToASealedSegmentCostsOnlyThatSegment(seed: Int) throws {
        var generator = SeededGenerator(seed: UInt64(seed) &+ 977)
        for _ in 0..<15 {
            let (directory, spool) = try makeSpool()
            var configuration = Journal.Configuration()
            configuration.maxSegmentBytes = 1024
            let journal = try Journal(spool: spool, configuration: configuration)
            var bySegment: [UInt64: [[UInt8]]] = [:]
            for index in 0..<60 {
                let payload = Array("record \(index) ".utf8) + (0..<Int.random(in: 1...40, using: &generator)).map { _ in UInt8.random(in: 0x21...0x7E, using: &generator) }
                bySegment[try journal.append([payload], durability: .buffered).segment, default: []].append(payload)
            }
            let sealed = bySegment.keys.sorted().filter { FileManager.default.fileExists(atPath: segmentPath(directory, JournalSegment.sealedName($0))) }
            let victim = try #require(sealed.randomElement(using: &generator))
            let path = segmentPath(directory, JournalSegment.sealedName(victim))
            var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            if Bool.random(using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] ^= UInt8(1 << Int.random(in: 0..<8, using: &generator))
            } else {
                bytes = bytes.prefix(Int.random(in: 0..<bytes.count, using: &generator))
            }
            try bytes.write(to: URL(fileURLWithPath: path))

            var payloads: [[UInt8]] = []
            let result = try Journal(spool: spool).read { payloads.append($0.payload) }
            let mine = try #require(bySegment[victim])
            let others = bySegment.keys.sorted().filter { $0 != victim }.flatMap { bySegment[$0]! }
            #expect(payloads.filter { !mine.contains($0) } == others)
            let recovered = payloads.filter { mine.contains($0) }
            #expect(recovered == mine.filter { recovered.contains($0) }, "in order, none invented")
            if recovered.count < mine.count { #expect(result.damage.map(\.sequence) == [victim]) }
        }
    }
}
