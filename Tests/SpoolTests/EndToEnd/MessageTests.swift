import Foundation
import Testing
@testable import Intake
@testable import Rentals
@testable import Spool

/// Messages that name the real cause, echo at most a short piece of what was typed, and carry
/// the right code (issue 7, items 12 and 16).
@Suite(.serialized) struct MessageTests {
    static func submit(_ extra: [String], from: String = "2099-01-01", customer: String = "alice@example.com") -> [String] {
        ["submit", "--customer", customer, "--contact", "alice@example.com", "--size", "M", "--from", from] + extra
    }

    @Test func aDateBeyondTheCalendarIsSaidToBeOutOfRange() throws {
        let system = try SystemFixture()
        let result = try system.ctl(Self.submit(["--months", "1"], from: "9999-12-15"))
        #expect(result.status == 65)
        #expect(result.errors.contains("out of range") && result.errors.contains("9999-12-31"), "\(result.errors)")
        #expect(!result.errors.contains("between 1 and"), "\(result.errors)")
        // The end of the calendar is not "longer than the maximum" either.
        #expect(try system.ctl(Self.submit(["--to", "9999-12-31"], from: "9999-12-15")).status == 0)
    }

    @Test func aNegativeNumberOfMonthsIsOutOfRangeNotMissing() throws {
        let system = try SystemFixture()
        let result = try system.ctl(Self.submit(["--months", "-1"]))
        #expect(result.status == 65)
        #expect(result.errors.contains("--months -1 is out of range"), "\(result.errors)")
    }

    @Test func aHugeArgumentIsEchoedShort() throws {
        let system = try SystemFixture()
        let huge = String(repeating: "x", count: 120_000)
        for arguments in [Self.submit(["--months", "3"], customer: huge), Self.submit(["--months", huge]), ["status", huge],
                          ["list", "--state", huge], ["units", "add", huge, "--size", "S"], ["units", "import", "/nonexistent/" + huge]] {
            let result = try system.ctl(arguments)
            #expect(result.status != 0)
            #expect(result.errors.hasPrefix("spoolctl: ") && result.errors.count < 400, "\(arguments.first!): \(result.errors.count) characters")
            #expect(result.errors.contains("xxxx…"), "\(arguments.first!): \(result.errors.prefix(200))")
        }
    }

    @Test func anIdempotencyKeyReusedForAnotherRequestIsAConflict() throws {
        let system = try SystemFixture()
        let first = try system.ctl(Self.submit(["--months", "3", "--idempotency-key", "k-1", "--json"]))
        #expect(first.status == 0)
        let id = try #require((try JSONSerialization.jsonObject(with: Data(first.output.utf8)) as? [String: Any])?["id"] as? String)
        // The same request again: the first id.
        let same = try system.ctl(Self.submit(["--to", "2099-04-01", "--idempotency-key", "k-1"]))
        #expect(same.status == 0 && same.output.contains(id), "\(same.errors)")
        // Another request with the key: refused, naming the first request and what differs.
        let other = try system.ctl(Self.submit(["--months", "6", "--idempotency-key", "k-1"]))
        #expect(other.status == 65)
        #expect(other.errors.contains("idempotency key \"k-1\" was already used for request \(id) with a different period"), "\(other.errors)")
        let otherCustomer = try system.ctl(Self.submit(["--months", "3", "--idempotency-key", "k-1"], customer: "bob@example.com"))
        #expect(otherCustomer.status == 65 && otherCustomer.errors.contains("different customer"), "\(otherCustomer.errors)")
        #expect(try system.json([RentalStatus].self, "list").count == 1)
    }

    @Test func queuesTellsWhenTheBreakerOpenedAndHowTheAllocatorIsNow() throws {
        let system = try SystemFixture()
        #expect(try system.ctl("queues").status == 0)
        let records = try RecordDirectory(spool: Spool(path: system.spool), path: "state")
        try records.write("breaker", canonicalJSON(AdmissionControl.State(state: "open", openedAt: Clock.nowMilliseconds(),
                                                                          reason: "the allocator keeps failing (5 in a row: disk I/O error)")))
        var health = AllocatorHealth()
        health.updatedAt = Clock.nowMilliseconds()
        try records.write(AllocatorHealth.recordName, canonicalJSON(health))
        let result = try system.ctl("queues")
        #expect(result.status == 0)
        #expect(result.output.contains("breaker: open since "), "\(result.output)")
        #expect(result.output.contains("opened because the allocator keeps failing (5 in a row"), "\(result.output)")
        #expect(result.output.contains("allocator now: 0 failures in a row (reported "), "\(result.output)")
    }

    @Test(.enabled(if: getuid() == 0, "needs root to mount a tmpfs"))
    func aFullDiskUnderSQLiteIsTryAgainLater() throws {
        let directory = TemporaryDirectory("full")
        let mountPoint = directory.sub("fs")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mount = try ChildProcess("/bin/mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mountPoint]).finish()
        try #require(mount.status == 0, "\(mount.errors)")
        defer { _ = try? ChildProcess("/bin/umount", [mountPoint]).finish() }
        let config = directory.sub("spool.conf")
        try Data("spool_root = \(mountPoint)/spool\n".utf8).write(to: URL(fileURLWithPath: config))
        func ctl(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
            try ChildProcess("spoolctl", arguments, environment: ["SPOOL_CONFIG": config, "SPOOL_ROOT": ""]).finish()
        }
        #expect(try ctl(["units", "add", "A-1", "--size", "S"]).status == 0)
        // Fill the file system.
        let filler = open("\(mountPoint)/filler", O_WRONLY | O_CREAT, 0o600)
        let block = [UInt8](repeating: 0, count: 65_536)
        while write(filler, block, block.count) > 0 {}
        var byte: UInt8 = 0
        while write(filler, &byte, 1) > 0 {}
        close(filler)
        for arguments in [["units", "add", "A-2", "--size", "S"], Self.submit(["--months", "3"])] {
            let result = try ctl(arguments)
            #expect(result.status == 75, "\(arguments.prefix(2)): \(result.errors)")
            #expect(result.errors.contains("full"), "\(result.errors)")
        }
    }

    @Test(.enabled(if: getuid() == 0, "needs root to mount a tmpfs"))
    func runningOutOfInodesWhileCreatingTheSpoolIsTryAgainLater() throws {
        let directory = TemporaryDirectory("inodes")
        let mountPoint = directory.sub("fs")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mount = try ChildProcess("/bin/mount", ["-t", "tmpfs", "-o", "size=4m,nr_inodes=12", "tmpfs", mountPoint]).finish()
        try #require(mount.status == 0, "\(mount.errors)")
        defer { _ = try? ChildProcess("/bin/umount", [mountPoint]).finish() }
        let config = directory.sub("spool.conf")
        try Data("spool_root = \(mountPoint)/spool\n".utf8).write(to: URL(fileURLWithPath: config))
        let result = try ChildProcess("spoolctl", Self.submit(["--months", "3"]),
                                      environment: ["SPOOL_CONFIG": config, "SPOOL_ROOT": ""]).finish()
        #expect(result.status == 75, "\(result.errors)")
        #expect(result.errors.contains("full"), "\(result.errors)")
    }
}
