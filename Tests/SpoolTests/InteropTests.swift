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
}
