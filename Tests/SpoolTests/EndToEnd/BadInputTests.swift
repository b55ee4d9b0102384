import Foundation
import Intake
import Rentals
import Testing
@testable import Spool

/// Every bad input gets a one-line message and the right sysexits code, and leaves nothing in
/// the spool.
@Suite(.serialized) struct BadInputTests {
    static let valid = ["--customer", "alice@example.com", "--contact", "alice@example.com", "--size", "M", "--from", "2099-01-01"]

    static func submit(replacing option: String? = nil, with value: String? = nil, adding extra: [String] = ["--months", "3"]) -> [String] {
        var arguments = valid
        if let option, let index = arguments.firstIndex(of: option) {
            if let value { arguments[index + 1] = value } else { arguments.removeSubrange(index...index + 1) }
        }
        return ["submit"] + arguments + extra
    }

    static let cases: [(String, [String], Int32)] = [
        ("unknown size", submit(replacing: "--size", with: "XXL"), 65),
        ("date that does not parse", submit(replacing: "--from", with: "01/02/2099"), 65),
        ("impossible date", submit(replacing: "--from", with: "2099-02-30"), 65),
        ("start in the past", submit(replacing: "--from", with: "2001-01-01"), 65),
        ("end before start", submit(adding: ["--to", "2098-12-01"]), 65),
        ("end equals start", submit(adding: ["--to", "2099-01-01"]), 65),
        ("both --to and --months", submit(adding: ["--to", "2099-03-01", "--months", "2"]), 64),
        ("neither --to nor --months", submit(adding: []), 64),
        ("months out of range", submit(adding: ["--months", "0"]), 65),
        ("period longer than the maximum", submit(adding: ["--to", "2110-01-01"]), 65),
        ("months not a number", submit(adding: ["--months", "three"]), 64),
        ("customer missing", submit(replacing: "--customer"), 64),
        ("customer with spaces", submit(replacing: "--customer", with: "Alice Smith"), 65),
        ("customer too long", submit(replacing: "--customer", with: String(repeating: "a", count: 129)), 65),
        ("contact not an address", submit(replacing: "--contact", with: "alice"), 65),
        ("contact with a header injection", submit(replacing: "--contact", with: "a@b.c\nBcc: x@y.z"), 65),
        ("bad idempotency key", submit(adding: ["--months", "1", "--idempotency-key", "../etc"]), 65),
        ("unknown option", ["submit", "--colour", "red"], 64),
        ("unknown command", ["rent"], 64),
        ("status of an unknown id", ["status", "01m8bsrx92ya1zb7wkve4kpmfn"], 66),
        ("status of a malformed id", ["status", "../../etc/passwd"], 65),
        ("cancel of an unknown id", ["cancel", "01m8bsrx92ya1zb7wkve4kpmfn"], 66),
        ("status with id and --customer", ["status", "x", "--customer", "y"], 64),
        ("list with an unknown state", ["list", "--state", "lost"], 64),
        ("unit with a bad size", ["units", "add", "Q-1", "--size", "HUGE"], 65),
        ("unit with a bad id", ["units", "add", "../x", "--size", "S"], 65),
        ("retire an unknown unit", ["units", "retire", "NOPE"], 66),
        ("import a missing file", ["units", "import", "/nonexistent/units.csv"], 66),
    ]

    @Test func everyBadInputGetsOneLineAndItsExitCode() throws {
        let system = try SystemFixture()
        for (label, arguments, expected) in Self.cases {
            let result = try system.ctl(arguments)
            #expect(result.status == expected, "\(label): exit \(result.status), expected \(expected): \(result.errors)")
            let lines = result.errors.split(separator: "\n")
            #expect(lines.count == 1, "\(label): \(lines.count) lines: \(result.errors)")
            #expect(result.errors.hasPrefix("spoolctl: "), "\(label): \(result.errors)")
        }
        // Nothing was queued, journaled or indexed.
        let spool = try Spool(path: system.spool)
        for name in QueueName.rentalQueues { #expect(try spool.queue(name).counts() == QueueCounts()) }
        #expect(try Journal(spool: spool).records().isEmpty)
        #expect(filesBelow("\(system.spool)/tmp").isEmpty)
        #expect(filesBelow("\(system.spool)/intake").isEmpty)
        #expect(try system.json([RentalStatus].self, "list").isEmpty)
    }

    @Test func badInputWithJSONGivesAnErrorObject() throws {
        let system = try SystemFixture()
        let result = try system.ctl(Self.submit(replacing: "--size", with: "XXL") + ["--json"])
        #expect(result.status == 65)
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        #expect(object?["exit_code"] as? Int == 65)
        #expect((object?["error"] as? String)?.contains("unknown unit size") == true)
    }

    /// A configuration that cannot be read whole is refused, never used as empty or half read:
    /// a directory (reads fail with EISDIR) and a FIFO (nobody writes to it) named by --config,
    /// and an unreadable file (as an ordinary user: root reads anything).
    @Test func aConfigurationThatCannotBeReadWholeIsRefused() throws {
        let system = try SystemFixture()
        let directory = system.directory.sub("conf.d")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fifo = system.directory.sub("conf.fifo")
        #expect(mkfifo(fifo, 0o644) == 0)
        for (path, message) in [(directory, "not a regular file"), (fifo, "not a regular file")] {
            let child = try ChildProcess("spoolctl", ["list", "--config", path],
                                         environment: ["SPOOL_CONFIG": "", "SPOOL_ROOT": system.spool])
            // The old code blocked for ever on the FIFO: don't wait for ever here.
            let deadline = Date().addingTimeInterval(20)
            while child.process.isRunning, Date() < deadline { usleep(10_000) }
            if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) }
            let result = child.finish()
            #expect(result.status == 65, "\(path): exit \(result.status): \(result.errors)")
            #expect(result.errors.contains(message), "\(path): \(result.errors)")
        }
    }
}
