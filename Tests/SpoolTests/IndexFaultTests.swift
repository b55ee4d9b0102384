import Foundation
import GRDB
import SQLiteFaults
import Testing
@testable import Spool

extension SQLiteFaultInjection {
    /// Fault injection into the status index. SQLite does its own file I/O, so its seam is a VFS
    /// (`Tests/SQLiteFaults`) that fails the n-th open, read, write, truncate, sync, size, delete,
    /// lock or shared-memory map of the index's files with an I/O error or a full disk.
    @Suite struct IndexFaultTests {
        private let calls: [(Int32, String)] = [
            (Int32(SQLITE_FAULT_OPEN.rawValue), "open"), (Int32(SQLITE_FAULT_READ.rawValue), "read"),
            (Int32(SQLITE_FAULT_WRITE.rawValue), "write"), (Int32(SQLITE_FAULT_TRUNCATE.rawValue), "truncate"),
            (Int32(SQLITE_FAULT_SYNC.rawValue), "sync"), (Int32(SQLITE_FAULT_FILE_SIZE.rawValue), "size"),
            (Int32(SQLITE_FAULT_DELETE.rawValue), "delete"), (Int32(SQLITE_FAULT_LOCK.rawValue), "lock"),
            (Int32(SQLITE_FAULT_SHM_MAP.rawValue), "shm-map"),
        ]

        private let update = [
            IndexEvent(entity: "r1", version: 2, state: "assigned", at: 2, keys: ["customer": "alice"], document: #"{"unit":"A-1"}"#),
            IndexEvent(entity: "r2", version: 1, state: "received", at: 3, keys: ["customer": "bob"]),
        ]

        /// An index holding r1 at version 1, opened through the faulty VFS.
        private func preparedIndex(_ marker: String) throws -> StatusIndex {
            let directory = TemporaryDirectory(marker)
            let index = try StatusIndex(path: directory.sub("status.sqlite"))
            try index.apply([IndexEvent(entity: "r1", version: 1, state: "received", at: 1, keys: ["customer": "alice"])])
            return index
        }

        private func isUnchanged(_ path: String) throws -> Bool {
            let reader = try StatusIndex(path: path, readOnly: true)
            return try reader.dump().map { "\($0.entity)@\($0.version)" } == ["r1@1"]
        }

        private func isUpdated(_ path: String) throws -> Bool {
            let reader = try StatusIndex(path: path, readOnly: true)
            return try reader.dump().map { "\($0.entity)@\($0.version)" } == ["r1@2", "r2@1"]
        }

        @Test func indexUpdateFailsCleanlyAndRetrySucceeds() throws {
            #expect(sqlite_faults_install() == 0)
            let marker = "faulty-index-\(getpid())"
            // Learn the calls one update makes.
            let probe = try preparedIndex(marker)
            sqlite_faults_arm(marker, -1, 0, 0)
            try probe.apply(update)
            sqlite_faults_disarm()
            let counts = calls.map { (call: $0.0, name: $0.1, count: Int(sqlite_faults_count($0.0))) }.filter { $0.count > 0 }
            #expect(counts.contains { $0.name == "write" })

            var failures = 0
            for entry in counts {
                for occurrence in 1...entry.count {
                    for full in [Int32(0), 1] {
                        let index = try preparedIndex(marker)
                        sqlite_faults_arm(marker, entry.call, Int32(occurrence), full)
                        let label = "\(entry.name) #\(occurrence)\(full == 1 ? " (disk full)" : "")"
                        do {
                            try index.apply(update)
                            sqlite_faults_disarm()  // a fault SQLite tolerated: the update must be whole
                        } catch let error as DatabaseError {
                            sqlite_faults_disarm()
                            failures += 1
                            let specific: [ResultCode] = [.SQLITE_IOERR, .SQLITE_FULL, .SQLITE_CANTOPEN]
                            #expect(specific.contains(error.resultCode), "\(label): \(error)")
                            #expect(try isUnchanged(index.path), "\(label): a failed update left a trace")
                            try index.apply(update)
                        }
                        #expect(try isUpdated(index.path), "\(label)")
                    }
                }
            }
            print("index faults: \(counts.map { "\($0.name)×\($0.count)" }), \(failures) surfaced")
            #expect(failures > 0)
        }
    }
}

/// A spool's index replaced under an open `StatusIndex` (issue 7, item 8).
@Suite struct IndexReplacementTests {
    private func event(_ id: String, _ version: Int64) -> IndexEvent {
        IndexEvent(entity: id, version: version, state: "received", at: version, keys: ["customer": "c"])
    }

    /// One index rebuilt (a new file renamed over the old) while another has the old file open:
    /// the other reopens at its next use and writes to the new file, and nothing written to the
    /// new file by either is lost when the old file's connections close.
    @Test func rebuildUnderAnOpenIndexLosesNothing() throws {
        let (_, spool) = try makeSpool()
        let journal = try Journal(spool: spool)
        let first = try StatusIndex(spool: spool), second = try StatusIndex(spool: spool)
        for round in 1...5 {
            let id = "r\(round)"
            try journal.append([event(id, 1).encoded()], durability: .durable)
            try first.apply([event(id, 1)])
            try second.rebuild(from: journal)
            try journal.append([event(id, 2).encoded()], durability: .durable)
            try first.apply([event(id, 2)])  // reopens, closes the old file's connections
            try journal.append([event("s\(round)", 1).encoded()], durability: .durable)
            try second.apply([event("s\(round)", 1)])
            let third = try StatusIndex(spool: spool)
            #expect(try third.dump().map { "\($0.entity)@\($0.version)" }.filter { $0.hasPrefix("r\(round)") || $0.hasPrefix("s\(round)") }
                        == ["r\(round)@2", "s\(round)@1"], "round \(round)")
        }
        #expect(try first.dump().count == 10)
    }
}
