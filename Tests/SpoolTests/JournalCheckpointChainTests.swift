import Foundation
import Testing
@testable import Spool

/// Attacks on the append checkpoint (issue 9, engineer `adversary`): a checkpoint may vouch only
/// for bytes someone validated. A long-lived appender (a daemon) validated its segment when it
/// opened it and then only looks at what others append; if the segment was changed in place
/// since (a flipped byte written by anyone), its next durable append must not write a checkpoint
/// over the damage, or every later process (each `spoolctl submit`) trusts it and the damage is
/// never found and quarantined by an appender.
@Suite struct JournalCheckpointChainTests {
    private func event(_ index: Int) -> [UInt8] {
        Array(#"{"at":1,"document":"{}","entity":"req-\#(index)","keys":{},"state":"received","version":1}"#.utf8)
    }

    /// Flips one byte inside the frame at `position`, written in place (same size, new ctime).
    private func flipByte(_ directory: TemporaryDirectory, at position: JournalPosition) throws {
        let path = directory.sub("spool/journal/\(JournalSegment.activeName(position.segment))")
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: UInt64(position.offset + 30))
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: UInt64(position.offset + 30))
        try handle.write(contentsOf: Data([byte ^ 0x20]))
        try handle.close()
    }

    private func expectDamageHandled(_ directory: TemporaryDirectory, segment: UInt64) {
        #expect(filesBelow(directory.sub("spool/corrupt")).contains { $0.hasPrefix("journal.\(JournalSegment.activeName(segment)).") },
                "the damaged segment was not copied to corrupt/")
        #expect(FileManager.default.fileExists(atPath: directory.sub("spool/journal/\(JournalSegment.sealedName(segment))")),
                "the damaged segment is still the live one")
    }

    @Test func aLongLivedAppenderDoesNotVouchForDamageWrittenSinceItValidated() throws {
        let (directory, spool) = try makeSpool()
        let daemon = try Journal(spool: spool)
        var positions: [JournalPosition] = []
        for index in 0..<40 { positions.append(try daemon.append([event(index)], durability: .durable)) }
        try flipByte(directory, at: positions[20])
        // The daemon appends again: it validates only what follows its own last append.
        try daemon.append([event(40)], durability: .durable)

        // A fresh process (a submit) must find the damage, as without a checkpoint.
        try Journal(spool: spool).append([event(41)], durability: .durable)
        expectDamageHandled(directory, segment: positions[0].segment)
        #expect(try Journal(spool: spool).records().map(\.payload) == (0...41).filter { $0 != 20 }.map(event))
    }

    @Test func anAppenderDoesNotVouchForDamageWrittenBeforeAnotherProcessAppended() throws {
        let (directory, spool) = try makeSpool()
        let first = try Journal(spool: spool)
        let second = try Journal(spool: spool)
        var positions: [JournalPosition] = []
        for index in 0..<20 { positions.append(try first.append([event(index)], durability: .durable)) }
        try second.append([event(20)], durability: .durable)  // opens now (checkpointed), validated
        try flipByte(directory, at: positions[10])
        try first.append([event(21)], durability: .durable)  // validates only the second's frame
        try second.append([event(22)], durability: .durable)  // validates only the first's frame

        try Journal(spool: spool).append([event(23)], durability: .durable)
        expectDamageHandled(directory, segment: positions[0].segment)
        #expect(try Journal(spool: spool).records().map(\.payload) == (0...23).filter { $0 != 10 }.map(event))
    }

    @Test func theChainOfCheckpointsHoldsAcrossAppendersWhenNothingElseWrites() throws {
        let (directory, spool) = try makeSpool()
        let first = try Journal(spool: spool)
        let second = try Journal(spool: spool)
        for index in 0..<30 {
            try (index.isMultiple(of: 2) ? first : second).append([event(index)], durability: .durable)
        }
        let lock = try Array(Data(contentsOf: URL(fileURLWithPath: directory.sub("spool/journal/lock"))))
        let checkpoint = try #require(JournalCheckpoint.decode(lock[...]))
        let size = try FileManager.default.attributesOfItem(atPath: directory.sub("spool/journal/\(JournalSegment.activeName(1))"))[.size] as? Int
        #expect(checkpoint.validEnd == size, "interleaved appenders stopped vouching for each other")
        #expect(try Journal(spool: spool).records().map(\.payload) == (0..<30).map(event))
    }
}
