import Foundation
import Intake
import Rentals
import Testing
@testable import Spool

/// A whole system on a temporary spool: runs the real `spoolctl`, `spool-allocator` and
/// `spool-notifier` executables as separate processes.
final class SystemFixture: @unchecked Sendable {
    let directory = TemporaryDirectory("e2e")
    let spool: String
    let configPath: String
    private var daemons: [String: ChildProcess] = [:]

    /// A fixture whose configuration file holds `settings` (key = value lines).
    init(settings: [String: String] = [:]) throws {
        spool = directory.sub("spool")
        configPath = directory.sub("spool.conf")
        var lines = ["spool_root = \(spool)"]
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) { lines.append("\(key) = \(value)") }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: configPath))
    }

    deinit {
        for name in Array(daemons.keys) { stop(name) }
    }

    var environment: [String: String] { ["SPOOL_CONFIG": configPath, "SPOOL_ROOT": "", "SPOOL_LOG_LEVEL": "info"] }

    /// Runs `spoolctl` with `arguments`; returns exit status and output.
    @discardableResult
    func ctl(_ arguments: String...) throws -> (status: Int32, output: String, errors: String) {
        try ctl(arguments)
    }

    @discardableResult
    func ctl(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        try ChildProcess("spoolctl", arguments, environment: environment).finish()
    }

    /// Runs `spoolctl … --json` and decodes its output.
    func json<T: Decodable>(_ type: T.Type, _ arguments: String...) throws -> T {
        let result = try ctl(arguments + ["--json"])
        #expect(result.status == 0, "\(arguments): \(result.errors)")
        return try JSONDecoder().decode(T.self, from: Data(result.output.utf8))
    }

    /// Submits a request and returns its id.
    func submit(customer: String = "alice@example.com", size: String, from: String, to: String, extra: [String] = []) throws -> String {
        let result = try ctl(["submit", "--customer", customer, "--contact", "alice@example.com", "--size", size,
                              "--from", from, "--to", to, "--json"] + extra)
        #expect(result.status == 0, "submit failed: \(result.errors)")
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        return try #require(object?["id"] as? String)
    }

    func status(_ id: String) throws -> RentalStatus { try json(RentalStatus.self, "status", id) }

    func addUnits(_ units: [(String, String)]) throws {
        for (id, size) in units {
            let result = try ctl("units", "add", id, "--size", size, "--site", "Site \(size)")
            #expect(result.status == 0, "\(result.errors)")
        }
    }

    func start(_ daemon: String, name: String? = nil, environment extra: [String: String] = [:]) throws {
        daemons[name ?? daemon] = try ChildProcess(daemon, [], environment: environment.merging(extra) { $1 })
    }

    func startBoth() throws {
        try start("spool-allocator")
        try start("spool-notifier")
    }

    /// Stops a daemon with SIGTERM and waits; returns its exit status.
    @discardableResult
    func stop(_ name: String) -> Int32 { stopReporting(name).status }

    /// Stops a daemon with SIGTERM and waits; returns its exit status and its log.
    func stopReporting(_ name: String) -> (status: Int32, output: String, errors: String) {
        guard let daemon = daemons.removeValue(forKey: name) else { return (-1, "", "") }
        if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGTERM) }
        return daemon.finish()
    }

    /// Kills a daemon with SIGKILL (a crash) and waits.
    func crash(_ name: String) {
        guard let daemon = daemons.removeValue(forKey: name) else { return }
        Glibc.kill(daemon.process.processIdentifier, SIGKILL)
        _ = daemon.finish()
    }

    /// Waits up to `seconds` for `condition`.
    func eventually(_ seconds: Double = 20, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }

    /// Waits until request `id` reaches `state`.
    func waitFor(_ id: String, _ state: RentalState, seconds: Double = 20) throws -> RentalStatus {
        var last: RentalStatus?
        let reached = eventually(seconds) {
            last = try? status(id)
            return last?.state == state
        }
        #expect(reached, "request \(id) did not reach \(state); last: \(String(describing: last?.state))")
        return try #require(last)
    }

    /// The files of a customer's Maildir `new/`.
    func mailbox(_ customer: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: "\(spool)/maildir/\(customer)/new"))?.sorted() ?? []
    }

    /// Every record in the journal, as text.
    func journalTexts() throws -> [String] {
        try Journal(spool: Spool(path: spool)).records().map { String(decoding: $0.payload, as: UTF8.self) }
    }
}
