import Foundation
import Intake
import Rentals
import Testing
@testable import Spool

/// Where `spoolctl` cannot write: a closed stream, a full disk (`/dev/full`), a pipe nobody
/// reads. It never crashes; a result it could not deliver exits 74 (issue 7, item 9).
@Suite(.serialized) struct OutputFailureTests {
    static let submit = ["submit", "--customer", "alice@example.com", "--contact", "alice@example.com", "--size", "M",
                         "--from", "2099-01-01", "--months", "3"]

    /// Runs `spoolctl` through `/bin/sh` with `redirection` (e.g. `2>&-`) applied.
    static func ctl(_ system: SystemFixture, _ redirection: String, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        try ChildProcess("/bin/sh", ["-c", "exec \"$0\" \"$@\" \(redirection)", "\(productsDirectory())/spoolctl"] + arguments,
                         environment: system.environment).finish()
    }

    /// Runs `spoolctl` with `descriptor` (1 or 2) writing into a pipe whose reading end is
    /// closed before it starts; returns its status and what the other stream received.
    static func ctlIntoBrokenPipe(_ system: SystemFixture, descriptor: Int32, _ arguments: [String]) throws -> (status: Int32, other: String) {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        close(ends[0])
        let broken = FileHandle(fileDescriptor: ends[1], closeOnDealloc: true)
        let other = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(productsDirectory())/spoolctl")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(system.environment) { $1 }.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 }
        process.standardInput = FileHandle.nullDevice
        if descriptor == 1 { process.standardOutput = broken; process.standardError = other } else {
            process.standardOutput = other; process.standardError = broken
        }
        try process.run()
        try broken.close()
        let text = String(decoding: other.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    @Test(arguments: ["2>&-", "2>/dev/full"])
    func anErrorLineThatCannotBeWrittenLeavesTheExitCode(redirection: String) throws {
        let system = try SystemFixture()
        #expect(try Self.ctl(system, redirection, ["status", "01m8bsrx92ya1zb7wkve4kpmfn"]).status == 66)
        #expect(try Self.ctl(system, redirection, ["rent"]).status == 64)
        #expect(try Self.ctl(system, redirection, Self.submit.map { $0 == "M" ? "XXL" : $0 }).status == 65)
        #expect(try Self.ctlIntoBrokenPipe(system, descriptor: 2, ["status", "01m8bsrx92ya1zb7wkve4kpmfn"]).status == 66)
    }

    @Test(arguments: [">/dev/full", ">&-", "broken pipe"])
    func aSubmitWhoseIdCannotBeWrittenExits74AndTheKeyReturnsIt(target: String) throws {
        let system = try SystemFixture()
        let arguments = Self.submit + ["--idempotency-key", "order-1"]
        let status: Int32, errors: String
        if target == "broken pipe" {
            (status, errors) = try Self.ctlIntoBrokenPipe(system, descriptor: 1, arguments)
        } else {
            let result = try Self.ctl(system, target, arguments)
            (status, errors) = (result.status, result.errors)
        }
        #expect(status == 74, "\(target): \(errors)")
        #expect(errors.contains("is queued") && errors.contains("--idempotency-key"), "\(errors)")
        let retry = try system.ctl(arguments + ["--json"])
        #expect(retry.status == 0, "\(retry.errors)")
        let object = try JSONSerialization.jsonObject(with: Data(retry.output.utf8)) as? [String: Any]
        let id = try #require(object?["id"] as? String)
        #expect(object?["created"] as? Bool == false)
        #expect(errors.contains(id), "the error names the request: \(errors)")
        #expect(try system.json([RentalStatus].self, "list").map(\.id) == [id])
    }

    @Test func everyCommandsResultToAFullDiskExits74() throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "M")])
        for arguments in [["list"], ["list", "--json"], ["units", "list"], ["units", "list", "--json"], ["queues"], ["queues", "--json"],
                          ["units", "add", "A-2", "--size", "S"], ["--help"], ["help", "submit"]] {
            let result = try Self.ctl(system, ">/dev/full", arguments)
            #expect(result.status == 74, "\(arguments): \(result.status) \(result.errors)")
            #expect(result.errors.hasPrefix("spoolctl: cannot write"), "\(arguments): \(result.errors)")
        }
        #expect(try Self.ctl(system, ">&-", ["units", "list"]).status == 74)
        #expect(try Self.ctlIntoBrokenPipe(system, descriptor: 1, ["units", "list"]).status == 74)
    }

    @Test func aNonBlockingStdoutThatFillsUpGetsTheWholeResult() throws {
        let system = try SystemFixture()
        let csv = system.directory.sub("many.csv")
        try Data((1...300).map { "UNIT-\($0),S,Site number \($0)\n" }.joined().utf8).write(to: URL(fileURLWithPath: csv))
        #expect(try system.ctl("units", "import", csv).status == 0)
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        _ = fcntl(ends[1], 1031, 4096)  // F_SETPIPE_SZ (not exported to Swift)
        _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(productsDirectory())/spoolctl")
        process.arguments = ["units", "list"]
        process.environment = ProcessInfo.processInfo.environment.merging(system.environment) { $1 }.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 }
        let writer = FileHandle(fileDescriptor: ends[1], closeOnDealloc: true)
        process.standardOutput = writer
        process.standardError = FileHandle.nullDevice
        try process.run()
        try writer.close()
        // Read only once the pipe is full, so that the writer meets EAGAIN.
        #expect(system.eventually(20) {
            var queued: Int32 = 0
            return ioctl(ends[0], UInt(FIONREAD), &queued) == 0 && queued >= 4096 || !process.isRunning
        })
        let text = String(decoding: FileHandle(fileDescriptor: ends[0], closeOnDealloc: true).readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(text.split(separator: "\n").count == 301, "\(text.suffix(200))")
    }

    @Test(arguments: ["2>&-", "2>/dev/full"])
    func aDaemonWithoutAWritableStderrServes(redirection: String) throws {
        let system = try SystemFixture()
        try system.addUnits([("A-1", "M")])
        let daemon = try ChildProcess("/bin/sh", ["-c", "exec \"$0\" \(redirection)", "\(productsDirectory())/spool-allocator"],
                                      environment: system.environment.merging(["SPOOL_LOG_LEVEL": "debug"]) { $1 })
        let id = try system.submit(size: "M", from: "2099-01-01", to: "2099-04-01")
        let status = try system.waitFor(id, .assigned)
        #expect(status.unit == "A-1")
        if redirection == "2>&-" {
            // The closed descriptor was taken by /dev/null before the daemon opened anything: no
            // file or pipe it opened later received its log lines (it used to be an internal pipe).
            let target = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(daemon.process.processIdentifier)/fd/2")
            #expect(target == "/dev/null")
        }
        kill(daemon.process.processIdentifier, SIGTERM)
        #expect(daemon.finish().status == 0)
        // Nothing the daemon opened received its log lines.
        #expect(try system.ctl("index", "rebuild").status == 0)
        #expect(try system.status(id).state == .assigned)
    }
}
