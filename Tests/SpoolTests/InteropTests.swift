import Foundation
import Testing
@testable import Spool

/// Another language reads and writes the spool through `docs/spool-format.md` alone:
/// `Tests/interop/spool_format.py` is an independent implementation of it.
@Suite struct InteropTests {
    private var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("interop/spool_format.py").path
    }

    @Test func pythonEnqueuesAndSwiftConsumes() throws {
        let (_, spool) = try makeSpool()
        let queue = try spool.queue(QueueName("interop"))
        for index in 0..<20 {
            let python = try ChildProcess("/usr/bin/env", ["python3", script, "enqueue", spool.path, "interop", "py-\(index)", "payload \(index) ✓"])
            let result = python.finish()
            #expect(result.status == 0, "\(result.errors)")
        }
        var seen: [String: String] = [:]
        while let item = try queue.claimNext(lease: .seconds(5)) {
            seen[item.id.rawValue] = String(decoding: item.payload, as: UTF8.self)
            try queue.acknowledge(item)
        }
        #expect(seen.count == 20)
        for index in 0..<20 { #expect(seen["py-\(index)"] == "payload \(index) ✓") }
        #expect(filesBelow("\(spool.path)/corrupt").isEmpty)
    }

    @Test func pythonReadsTheCompressedJournal() throws {
        let (_, spool) = try makeSpool()
        var configuration = Journal.Configuration()
        configuration.maxSegmentBytes = 200
        let journal = try Journal(spool: spool, configuration: configuration)
        let lines = (0..<60).map { "record \($0)" }
        for line in lines { try journal.append([Array(line.utf8)], durability: .buffered) }
        let result = try ChildProcess("/usr/bin/env", ["python3", script, "journal", spool.path]).finish()
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.split(separator: "\n").map(String.init) == lines)
    }

    /// The independent reader follows the documented damage rules: after a flipped byte in a
    /// sealed segment and in the live one, it reads exactly the records the Swift reader reads.
    @Test func pythonResynchronisesPastDamageLikeSwift() throws {
        let (directory, spool) = try makeSpool()
        var configuration = Journal.Configuration()
        configuration.maxSegmentBytes = 400
        let journal = try Journal(spool: spool, configuration: configuration)
        var positions: [JournalPosition] = []
        for index in 0..<40 { positions.append(try journal.append([Array("record \(index)".utf8)], durability: .buffered)) }
        for position in [positions[3], positions[39]] {
            let sealed = directory.sub("spool/journal/\(JournalSegment.sealedName(position.segment))")
            let live = directory.sub("spool/journal/\(JournalSegment.activeName(position.segment))")
            if FileManager.default.fileExists(atPath: sealed) {
                var inflated = try Zlib.decompress(Array(try Data(contentsOf: URL(fileURLWithPath: sealed))), limit: 1 << 20)
                inflated[position.offset + 9] ^= 0x01
                try Data(Zlib.compress(inflated)).write(to: URL(fileURLWithPath: sealed))
            } else {
                var bytes = try Data(contentsOf: URL(fileURLWithPath: live))
                bytes[position.offset + 2] ^= 0x40
                try bytes.write(to: URL(fileURLWithPath: live))
            }
        }
        let swift = try Journal(spool: spool).records().map { String(decoding: $0.payload, as: UTF8.self) }
        #expect(swift == (0..<40).filter { $0 != 3 && $0 != 39 }.map { "record \($0)" })
        let result = try ChildProcess("/usr/bin/env", ["python3", script, "journal", spool.path]).finish()
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.split(separator: "\n").map(String.init) == swift)
    }
    /// A compacted journal reads the same from Python (the marker is one more record, not an
    /// event), and a retention archive decodes with Python's zlib to the dropped events.
    @Test func pythonReadsACompactedJournalAndItsArchive() throws {
        let (_, spool) = try makeSpool()
        var configuration = Journal.Configuration()
        configuration.maxSegmentBytes = 300
        let journal = try Journal(spool: spool, configuration: configuration)
        for index in 0..<60 {
            try journal.append([IndexEvent(entity: "e\(index % 12)", version: Int64(index), state: index >= 48 && index % 2 == 0 ? "gone" : "kept",
                                           at: Int64(index)).encoded()], durability: .buffered)
        }
        try journal.sync()
        let (report, _) = try journal.compact(pieceBytes: 200, mayDrop: { $0.state == "gone" },
                                              archive: { try RetentionArchive(spool: spool).write($0) })
        #expect(report.entitiesDropped > 0)
        let python = try ChildProcess("/usr/bin/env", ["python3", script, "journal", spool.path]).finish()
        #expect(python.status == 0, "\(python.errors)")
        let swift = try journal.records().map { String(decoding: $0.payload, as: UTF8.self) }
        #expect(python.output.split(separator: "\n").map(String.init) == swift)
        let archive = try ChildProcess("/usr/bin/env", ["python3", script, "archive", spool.path + "/" + (report.archive ?? "")]).finish()
        #expect(archive.status == 0, "\(archive.errors)")
        let entities = archive.output.split(separator: "\n").compactMap { IndexEvent.decode(Array($0.utf8))?.entity }
        #expect(entities.count == report.entitiesDropped)
        #expect(Set(entities).isDisjoint(with: Set(try StatusIndex.scan(journal).keys)))
    }
}
