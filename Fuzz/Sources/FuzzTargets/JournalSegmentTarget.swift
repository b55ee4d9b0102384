// The fuzz target for whole journal segments, through the journal's public reader and writer
// on a real (temporary) spool.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
@testable import Spool

extension FuzzTarget {
    /// A segment file of arbitrary bytes, read by `Journal.read` and appended to by
    /// `Journal.append`, live (`.log`) and sealed (`.log.z`):
    /// - every record read is a valid frame of the segment at the position reported;
    /// - the live segment and the same bytes sealed give the same records (the sealed one
    ///   reports a torn tail as damage);
    /// - an append after damage or a torn tail loses nothing readable: the records read
    ///   afterwards are the records read before plus the new one, and damage is copied to
    ///   `corrupt/` before anything is sealed or cut;
    /// - arbitrary bytes as a sealed segment (a damaged zlib stream) are read without a crash.
    static let journalSegment = FuzzTarget(name: "journal-segment", summary: "whole journal segments, live and sealed, read and appended to") { input in
        var violations = Violations()
        let marker = Array("fuzz-marker-record".utf8)
        var liveRecords: [[UInt8]] = []
        var liveTorn = false
        FuzzSpool.with { spool in
            try FuzzSpool.writeSegment(spool, JournalSegment.activeName(1), input)
            let journal = try Journal(spool: spool)
            let read = try journal.read { _ in }
            let records = try journal.records()
            liveRecords = records.map(\.payload)
            let header = JournalSegment.parseHeader(input)?.length ?? 0
            let scan = JournalSegment.scan(input, from: header)
            liveTorn = scan.tornTail != nil
            violations.expect(liveRecords == scan.records.map { Array(input[$0.payload]) }, "live read differs from the scan of the segment")
            for record in records {
                let offset = record.position.offset
                violations.expect(record.position.segment == 1 && JournalSegment.validFrame(in: input, at: offset) == record.next.offset
                                  && Array(input[min(offset + 8, input.count)..<min(record.next.offset, input.count)]) == record.payload,
                                  "record at \(record.position) is not a valid frame there")
            }
            violations.expect(read.damage.isEmpty == (scan.damaged.isEmpty && header > 0),
                              "live damage reported \(read.damage.count) time(s), scan found \(scan.damaged.count) damaged range(s)")
            for damage in read.damage { violations.expect(damage.copy != nil, "damage without a copy in corrupt/: \(damage)") }
            try journal.append([marker], durability: .durable)
            let after = try journal.records().map(\.payload)
            violations.expect(after == liveRecords + [marker], "after an append the journal reads \(after.count) records, expected \(liveRecords.count) + 1")
            if liveTorn || !scan.damaged.isEmpty || header == 0 {
                violations.expect(!FuzzSpool.corruptCopies(spool).isEmpty, "damage or a torn tail was sealed or cut without a copy in corrupt/")
            }
        } failed: { violations.expect(false, "live segment: \($0)") }
        if let compressed = try? Zlib.compress(input) {
            FuzzSpool.with { spool in
                try FuzzSpool.writeSegment(spool, JournalSegment.sealedName(1), compressed)
                let journal = try Journal(spool: spool)
                let read = try journal.read { _ in }
                let sealedRecords = try journal.records().map(\.payload)
                violations.expect(sealedRecords == liveRecords, "sealed and live segments read differently")
                if liveTorn { violations.expect(!read.damage.isEmpty, "a sealed segment's incomplete last frame is not reported") }
                try journal.append([marker], durability: .durable)
                let appended = try journal.records().map(\.payload)
                violations.expect(appended == liveRecords + [marker], "append after a sealed segment lost records")
            } failed: { violations.expect(false, "sealed segment: \($0)") }
        }
        FuzzSpool.with { spool in
            try FuzzSpool.writeSegment(spool, JournalSegment.sealedName(1), input)
            let journal = try Journal(spool: spool)
            let inflated = Zlib.inflatePrefix(input, limit: 1 << 30)
            let records = try journal.records()
            violations.expect(records.allSatisfy { !$0.payload.isEmpty && JournalSegment.validFrame(in: inflated.output, at: $0.position.offset) != nil },
                              "a record of a damaged sealed segment is not a valid frame")
            let read = try journal.read { _ in }
            if inflated.failure != nil { violations.expect(!read.damage.isEmpty, "a damaged zlib stream is not reported") }
        } failed: { violations.expect(false, "raw sealed segment: \($0)") }
        return violations.found
    }
}

/// Temporary spools for the journal target: each call gets a fresh one, removed afterwards.
enum FuzzSpool {
    /// Where the spools are made: `$SPOOL_FUZZ_TMP`, else `/dev/shm`, else `$TMPDIR` or `/tmp`.
    static let base: String = {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["SPOOL_FUZZ_TMP"], !path.isEmpty { return path }
        if access("/dev/shm", W_OK) == 0 { return "/dev/shm" }
        return environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    }()

    /// Runs `body` with a fresh spool; an error it throws goes to `failed`.
    static func with(_ body: (Spool) throws -> Void, failed: (any Error) -> Void) {
        var template = Array("\(base)/spool-fuzz.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { return failed(SpoolError.notFound("mkdtemp in \(base)")) }
        let path = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let spool = try Spool(path: path, create: true, logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() })
            try body(spool)
        } catch {
            failed(error)
        }
    }

    static func writeSegment(_ spool: Spool, _ name: String, _ bytes: [UInt8]) throws {
        let directory = "\(spool.path)/journal"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: "\(directory)/\(name)", contents: Data(bytes)) else {
            throw SpoolError.notFound("\(directory)/\(name)")
        }
    }

    static func corruptCopies(_ spool: Spool) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: "\(spool.path)/corrupt")) ?? []
    }
}
