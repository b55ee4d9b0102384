import Foundation
import Testing
@testable import Spool

/// The daemons as an operator watches them (issue 10): journald priority lines, heartbeat files
/// read by `spoolctl stats` (live, stale, stopped), `STATUS=` over sd_notify, and heartbeats that
/// fail without stopping the daemon. Real executables throughout.
@Suite(.serialized) struct DaemonObservabilityTests {
    /// A daemon whose stderr is a pipe this test made, so that `JOURNAL_STREAM` can name it.
    final class Daemon: @unchecked Sendable {
        let process = Process()
        private let errors = Pipe()
        private let lock = NSLock()
        private var log = Data()
        private let drained = DispatchSemaphore(value: 0)

        init(_ program: String, _ arguments: [String] = [], system: SystemFixture, environment extra: [String: String] = [:],
             journalStream: Bool = false) throws {
            process.executableURL = URL(fileURLWithPath: "\(productsDirectory())/\(program)")
            process.arguments = arguments
            var environment = ProcessInfo.processInfo.environment.merging(system.environment) { $1 }
            environment["SWIFT_BACKTRACE"] = "enable=no"
            environment["JOURNAL_STREAM"] = nil
            if journalStream {
                var info = stat()
                #expect(fstat(errors.fileHandleForWriting.fileDescriptor, &info) == 0)
                environment["JOURNAL_STREAM"] = "\(info.st_dev):\(info.st_ino)"
            }
            for (key, value) in extra { environment[key] = value }
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            process.standardError = errors
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let handle = errors.fileHandleForReading
            Thread.detachNewThread { [self] in
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    lock.lock()
                    log.append(chunk)
                    lock.unlock()
                }
                drained.signal()
            }
        }

        var text: String {
            lock.lock()
            defer { lock.unlock() }
            return String(decoding: log, as: UTF8.self)
        }

        func signal(_ number: Int32) { kill(process.processIdentifier, number) }

        /// SIGTERM (unless it already exited), then its exit status and whole log.
        func stop() -> (status: Int32, log: String) {
            if process.isRunning { signal(SIGTERM) }
            process.waitUntilExit()
            drained.wait()
            return (process.terminationStatus, text)
        }

        deinit {
            if process.isRunning {
                kill(process.processIdentifier, SIGCONT)
                kill(process.processIdentifier, SIGKILL)
            }
        }
    }

    struct StatsDaemon: Decodable {
        var program: String
        var instance: String
        var pid: Int32
        var liveness: String
        var backlog: Int
        var processed_last_minute: Int
    }

    struct StatsDaemons: Decodable { var daemons: [StatsDaemon] }

    static func daemons(_ system: SystemFixture) throws -> [StatsDaemon] {
        let result = try system.ctl("stats", "--json")  // exit 66 until a daemon made the spool
        return (try? JSONDecoder().decode(StatsDaemons.self, from: Data(result.output.utf8)))?.daemons ?? []
    }

    static func liveness(_ system: SystemFixture, _ program: String, _ instance: String) throws -> String? {
        try daemons(system).first { $0.program == program && $0.instance == instance }?.liveness
    }

    /// Under journald (stderr is the stream `JOURNAL_STREAM` names), every line is `<N>message
    /// key=value …`; a failed delivery is `<3>` with its `request=`, so `journalctl -p err` finds
    /// it; no line has a timestamp. Without the variable, or with one naming another stream, the
    /// terminal form stays.
    @Test func journaldLinesCarryPrioritiesAndTheRequest() throws {
        let system = try SystemFixture(settings: ["notify_hook": "exit 3", "max_attempts": "1"])
        try system.addUnits([("R-1", "S")])
        let allocator = try Daemon("spool-allocator", system: system, environment: ["JOURNAL_STREAM": "1:1"])
        let notifier = try Daemon("spool-notifier", system: system, journalStream: true)
        let id = try system.submit(size: "S", from: "2099-03-01", to: "2099-04-01")
        #expect(system.eventually(30) { (try? Spool(path: system.spool).queue(.notifications).counts().dead) == 1 })
        let notifierLog = notifier.stop().log
        let allocatorLog = allocator.stop().log
        let lines = notifierLog.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            #expect(line.range(of: #"^<[2-7]>[^<\s]"#, options: .regularExpression) != nil, "journald form: \(line)")
            #expect(line.range(of: #"\d{4}-\d\d-\d\dT"#, options: .regularExpression) == nil, "no timestamp: \(line)")
        }
        #expect(lines.contains { $0.hasPrefix("<3>delivery failed ") && $0.contains("request=\(id)") }, "\(notifierLog)")
        #expect(lines.contains { $0.hasPrefix("<3>dead-lettered after its last attempt ") }, "\(notifierLog)")
        #expect(lines.contains { $0.hasPrefix("<6>notifier ready ") })
        // The allocator's JOURNAL_STREAM names another stream: the terminal form, message first.
        let assigned = allocatorLog.split(separator: "\n").first { $0.contains("unit assigned") }
        #expect(assigned?.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ info allocator: unit assigned request="# + id,
                                options: .regularExpression) != nil, "\(allocatorLog)")
    }

    /// The heartbeat file makes a daemon live in `stats`; SIGSTOP makes it stale within 3
    /// intervals (and SIGCONT live again), SIGKILL leaves it stale, SIGTERM marks it stopped.
    @Test func heartbeatsShowLiveStaleAndStopped() throws {
        let system = try SystemFixture()
        let fast = ["SPOOL_HEARTBEAT_SECONDS": "1"]
        let blue = try Daemon("spool-allocator", ["--instance", "blue"], system: system, environment: fast)
        let main = try Daemon("spool-allocator", system: system, environment: fast)
        let notifier = try Daemon("spool-notifier", system: system, environment: fast)
        #expect(system.eventually(30) {
            (try? Self.liveness(system, "spool-allocator", "blue")) == "live" && (try? Self.liveness(system, "spool-allocator", "main")) == "live"
                && (try? Self.liveness(system, "spool-notifier", "main")) == "live"
        })
        #expect(try Self.daemons(system).first { $0.instance == "blue" }?.pid == blue.process.processIdentifier)

        blue.signal(SIGSTOP)
        #expect(system.eventually(20) { (try? Self.liveness(system, "spool-allocator", "blue")) == "stale" })
        #expect(try Self.liveness(system, "spool-allocator", "main") == "live", "the other instance is unaffected")
        blue.signal(SIGCONT)
        #expect(system.eventually(20) { (try? Self.liveness(system, "spool-allocator", "blue")) == "live" })

        let stopped = main.stop()
        #expect(stopped.status == 0)
        #expect(try Self.liveness(system, "spool-allocator", "main") == "stopped", "a clean stop says so at once")

        notifier.signal(SIGKILL)
        _ = notifier.stop()
        #expect(try Self.liveness(system, "spool-notifier", "main") == "live", "a killed daemon looks live until 3 intervals pass")
        #expect(system.eventually(20) { (try? Self.liveness(system, "spool-notifier", "main")) == "stale" })
        let human = try system.ctl("stats")
        #expect(human.status == 0 && human.output.contains("spool-notifier") && human.output.contains("stale"), "\(human.output)")
        #expect(blue.stop().status == 0)
    }

    /// Two daemons given one instance name share its heartbeat file: the second says so.
    @Test func aSecondDaemonWithTheSameInstanceWarns() throws {
        let system = try SystemFixture()
        let fast = ["SPOOL_HEARTBEAT_SECONDS": "1"]
        let first = try Daemon("spool-notifier", ["--instance", "twin"], system: system, environment: fast)
        #expect(system.eventually(30) { (try? Self.liveness(system, "spool-notifier", "twin")) == "live" })
        let second = try Daemon("spool-notifier", ["--instance", "twin"], system: system, environment: fast)
        #expect(system.eventually(30) { second.text.contains("another daemon with this instance name") })
        let log = second.stop().log
        #expect(log.contains("another daemon with this instance name looks alive") && log.contains("other_pid=\(first.process.processIdentifier)"), "\(log)")
        #expect(!first.stop().log.contains("another daemon"), "the first one started alone")
    }

    @Test func aBadInstanceNameIsAUsageError() throws {
        let system = try SystemFixture()
        for bad in ["Blue", "a/b", "", String(repeating: "a", count: 33)] {
            let daemon = try Daemon("spool-allocator", ["--instance", bad], system: system)
            daemon.process.waitUntilExit()
            #expect(daemon.stop().status == 64, "\(bad)")
        }
        #expect(!FileManager.default.fileExists(atPath: system.spool + "/heartbeat"))
    }

    /// `STATUS=` with the backlog, the rate and the instance, at start and at every heartbeat.
    @Test func statusLinesReachTheNotifySocket() throws {
        let system = try SystemFixture()
        for (program, unit) in [("spool-allocator", "decisions"), ("spool-notifier", "deliveries")] {
            let listener = try DaemonTests.NotifyListener(path: system.directory.sub("\(program).notify"))
            let daemon = try Daemon(program, ["--instance", "n2"], system: system,
                                    environment: ["NOTIFY_SOCKET": listener.path, "SPOOL_HEARTBEAT_SECONDS": "1"])
            let expected = "STATUS=backlog 0, 0 \(unit)/min, instance n2"
            var messages = listener.receive(for: 20) { $0 == expected }
            #expect(messages.contains(expected), "\(program): \(messages)")
            messages = listener.receive(for: 5) { $0 == expected }
            #expect(messages.contains(expected), "again at the next heartbeat: \(messages)")
            #expect(daemon.stop().status == 0)
        }
    }

    /// A heartbeat that cannot be written (its directory replaced by a file) is logged once and
    /// changes nothing else: the daemon keeps deciding; once writable again it says so.
    @Test func aFailingHeartbeatNeverStopsTheDaemon() throws {
        let system = try SystemFixture()
        try system.addUnits([("R-1", "S"), ("R-2", "S")])
        let listener = try DaemonTests.NotifyListener(path: system.directory.sub("allocator.notify"))
        let allocator = try Daemon("spool-allocator", system: system, environment: ["SPOOL_HEARTBEAT_SECONDS": "1", "NOTIFY_SOCKET": listener.path])
        let heartbeat = system.spool + "/heartbeat"
        #expect(system.eventually(30) { FileManager.default.fileExists(atPath: heartbeat + "/spool-allocator.main.json") })
        try FileManager.default.removeItem(atPath: heartbeat)
        try Data("not a directory".utf8).write(to: URL(fileURLWithPath: heartbeat))
        #expect(system.eventually(10) { allocator.text.contains("cannot write the heartbeat file") })
        _ = listener.receive(for: 0.3)  // what was sent before
        let first = try system.submit(size: "S", from: "2099-03-01", to: "2099-04-01")
        _ = try system.waitFor(first, .assigned)
        // Three more beats (each sends STATUS=, whether or not its file is written): still one line.
        var beats = 0
        _ = listener.receive(for: 15) { message in
            if message.hasPrefix("STATUS=backlog") { beats += 1 }
            return beats >= 3
        }
        #expect(beats >= 3)
        #expect(allocator.process.isRunning)
        try FileManager.default.removeItem(atPath: heartbeat)
        #expect(system.eventually(10) { allocator.text.contains("heartbeat written again") })
        let second = try system.submit(size: "S", from: "2099-05-01", to: "2099-06-01")
        _ = try system.waitFor(second, .assigned)
        let (status, log) = allocator.stop()
        #expect(status == 0)
        #expect(log.components(separatedBy: "cannot write the heartbeat file").count == 2, "logged once: \(log)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: system.spool + "/tmp").isEmpty, "nothing left staged")
    }
}
