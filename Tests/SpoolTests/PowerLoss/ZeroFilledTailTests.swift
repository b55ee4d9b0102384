import Foundation
import Testing
@testable import Spool

/// Found by the power-loss simulation: a power loss after an append's `write` and before its
/// `fsync` may leave the segment's new size on disk but not the data (ext4 `data=writeback`, and
/// the "garbage/zeros" appends ALICE and LazyFS model): zeros from the end of the last whole
/// frame to the end of the file. That append was never acknowledged; it is a torn tail, not
/// damage. Before the fix it was read as damage: every reader reported it (`reconcile` exited 65
/// naming a damaged segment after an ordinary power loss) and the next appender sealed the
/// segment as damaged and copied it to `corrupt/`.
@Suite struct ZeroFilledTailTests {
    private func appendZeros(_ count: Int, to path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND)
        try #require(fd >= 0)
        defer { close(fd) }
        let zeros = [UInt8](repeating: 0, count: count)
        #expect(zeros.withUnsafeBytes { write(fd, $0.baseAddress, count) } == count)
    }

    @Test(arguments: [8, 41, 4096])
    func aZeroFilledTailIsATornAppendNotDamage(zeros: Int) throws {
        let (_, spool) = try makeSpool()
        try Journal(spool: spool).append([Array("one".utf8)], durability: .durable)
        let live = "\(spool.path)/journal/00000000000000000001.log"
        try appendZeros(zeros, to: live)

        // A reader sees the one record and no damage.
        let reader = try Journal(spool: spool)
        var payloads: [[UInt8]] = []
        let result = try reader.read { payloads.append($0.payload) }
        #expect(result.damage.isEmpty, "zeros after the last frame are an unacknowledged append, not damage")
        #expect(payloads == [Array("one".utf8)])

        // The next appender cuts the tail (keeping a copy) and appends to the same segment.
        try Journal(spool: spool).append([Array("two".utf8)], durability: .durable)
        #expect(try reader.records().map(\.payload) == [Array("one".utf8), Array("two".utf8)])
        let journalFiles = try FileManager.default.contentsOfDirectory(atPath: "\(spool.path)/journal").sorted()
        #expect(journalFiles == ["00000000000000000001.log", "lock"], "not sealed as damaged")
        let copies = try FileManager.default.contentsOfDirectory(atPath: "\(spool.path)/corrupt")
        #expect(copies.count == 1 && copies[0].hasPrefix("journal.00000000000000000001.log.torn-at-"), "\(copies)")
    }

    /// Zeros followed by a valid frame are still damage (only a zero run to the end of the
    /// segment is a torn append).
    @Test func zerosBeforeAValidFrameAreDamage() throws {
        let (_, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        try journal.append([Array("one".utf8)], durability: .durable)
        let live = "\(spool.path)/journal/00000000000000000001.log"
        try appendZeros(16, to: live)
        let fd = open(live, O_WRONLY | O_APPEND)
        let frame = JournalSegment.frame(Array("two".utf8))
        _ = frame.withUnsafeBytes { write(fd, $0.baseAddress, frame.count) }
        close(fd)
        let result = try Journal(spool: spool).read { _ in }
        #expect(result.damage.count == 1)
    }
}
