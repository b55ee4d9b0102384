import Allocator
import Foundation
import GRDB
import Intake
import Rentals
import SQLiteFaults
import Testing
@testable import Spool

extension SQLiteFaultInjection {
    /// A read of the allocator store that fails as `pread` failing with `EIO` does in SQLite's unix
    /// VFS (`SQLITE_IOERR_CORRUPTFS`, which SQLite turns into `SQLITE_CORRUPT` on some paths) is an
    /// I/O error, never damage: the store is whole, so no copy in `corrupt/` and no
    /// ``DatabaseDamage`` (after which the allocator exits 65 and systemd does not restart it).
    /// Found by the faults campaign (libfiu `posix/io/rw/pread`, `failinfo=5`, in the allocator).
    @Suite struct StoreReadFaultTests {
        @Test func failedReadsOfTheStoreAreNotDamage() throws {
            #expect(sqlite_faults_install() == 0)
            sqlite_faults_read_error(10 | (33 << 8))  // SQLITE_IOERR_CORRUPTFS
            defer { sqlite_faults_read_error(10 | (1 << 8)) }  // SQLITE_IOERR_READ
            let marker = "store-read-fault-\(getpid())"
            let directory = TemporaryDirectory(marker)
            let spool = try Spool(path: directory.sub("spool"), create: true)
            do {
                let store = try AllocatorStore(spool: spool)
                try store.addUnits((1...40).map { StorageUnit(id: "U-\($0)", size: "S", site: "Main") }, sizes: SizeClass.defaults)
                try store.checkpoint()
            }
            // Learn how many reads opening the store and listing its units make.
            sqlite_faults_arm(marker, Int32(SQLITE_FAULT_READ.rawValue), 0, 0)
            _ = try AllocatorStore(spool: spool).units()
            sqlite_faults_disarm()
            let reads = Int(sqlite_faults_count(Int32(SQLITE_FAULT_READ.rawValue)))
            #expect(reads > 0)
            var failed = 0
            for occurrence in 1...max(reads, 1) {
                sqlite_faults_arm(marker, Int32(SQLITE_FAULT_READ.rawValue), Int32(occurrence), 0)
                do {
                    let units = try AllocatorStore(spool: spool).units()
                    #expect(units.count == 40)
                } catch let damage as DatabaseDamage {
                    Issue.record("read #\(occurrence) of \(reads) failing made the store \"damaged\": \(damage)")
                } catch {
                    failed += 1  // an I/O error: the caller retries
                }
                sqlite_faults_disarm()
            }
            #expect(filesBelow("\(spool.path)/corrupt").isEmpty, "\(filesBelow("\(spool.path)/corrupt"))")
            #expect(try AllocatorStore(spool: spool).units().count == 40)
            print("store read faults: \(reads) reads, \(failed) failed with an I/O error")
        }
    }
}
