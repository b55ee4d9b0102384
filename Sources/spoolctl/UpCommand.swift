#if canImport(Glibc)
import Glibc
#endif
import Allocator
import ArgumentParser
import DaemonRuntime
import Foundation
import Intake
import Rentals
import Spool

struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run the allocator and the notifier in the foreground on this spool (seeding a sample inventory when it is empty); Ctrl-C stops both cleanly.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .customLong("no-sample"), help: "Do not seed the sample inventory.")
    var noSample = false

    static let sampleInventory: [StorageUnit] = [
        StorageUnit(id: "A-101", size: "S", site: "Main Street 1"), StorageUnit(id: "A-102", size: "S", site: "Main Street 1"),
        StorageUnit(id: "A-103", size: "S", site: "Harbour Road 7"), StorageUnit(id: "B-201", size: "M", site: "Main Street 1"),
        StorageUnit(id: "B-202", size: "M", site: "Main Street 1"), StorageUnit(id: "B-203", size: "M", site: "Harbour Road 7"),
        StorageUnit(id: "C-301", size: "L", site: "Main Street 1"), StorageUnit(id: "C-302", size: "L", site: "Harbour Road 7"),
        StorageUnit(id: "D-401", size: "XL", site: "Harbour Road 7"),
    ]

    func run() throws {
        try global.requireDaemonRights(to: "run the daemons")
        let (spool, configuration) = try openSpool(global)
        let store = try operating(global, "opening the inventory") { try AllocatorStore(spool: spool) }
        if !noSample, try operating(global, "reading the inventory", { try store.units().isEmpty }) {
            let sizes = Set(configuration.sizes.map(\.name))
            try operating(global, "seeding the inventory") {
                try store.addUnits(Self.sampleInventory.filter { sizes.contains($0.size) }, sizes: configuration.sizes)
            }
            inform("seeded a sample inventory of \(Self.sampleInventory.count) units (spoolctl units list)")
        }
        var arguments = ["--spool", configuration.spoolRoot]
        if let config = global.config { arguments += ["--config", config] }
        let directory = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
            .deletingLastPathComponent()
        let stop = StopSignal()
        stop.triggerOnTermination()
        var children: [Supervised] = []
        for name in ["spool-allocator", "spool-notifier"] {
            var child = Supervised(executable: directory.appendingPathComponent(name), arguments: arguments)
            do { try child.start() } catch {
                children.forEach { $0.process.terminate() }
                throw Failure(IntakeError(.ioError, "cannot start \(name) from \(directory.path): \(error)"), json: global.json)
            }
            children.append(child)
        }
        inform("""
            allocator and notifier running on \(configuration.spoolRoot); Ctrl-C stops them.
            try: spoolctl submit --customer alice@example.com --contact alice@example.com --size M --from \(CalendarDay.today().adding(days: 7)) --months 3 --wait
            """)
        var failure: String?
        var damaged = false
        supervising: while !stop.isTriggered {
            for index in children.indices {
                switch children[index].supervise() {
                case .running: break
                case .restarting(let message): complain(message)
                case .givingUp(let message):
                    failure = message
                    damaged = children[index].process.terminationReason == .exit
                        && children[index].process.terminationStatus == DatabaseDamage.exitCode
                    break supervising
                }
            }
            _ = stop.wait(timeout: .milliseconds(200))
        }
        for child in children where child.process.isRunning { kill(child.process.processIdentifier, SIGTERM) }
        for child in children where child.started { child.process.waitUntilExit() }
        inform("stopped")
        if let failure { throw Failure(IntakeError(damaged ? .badData : .ioError, failure), json: false) }
    }
}

/// One daemon under `spoolctl up`: restarted when it dies, after a backoff that doubles with
/// each quick death (one within ``quickDeath`` of its start: 0.5 s, 1 s, 2 s, …); after
/// ``maxQuickDeaths`` of them in a row, supervision gives up (and `up` stops, exit 74). A daemon
/// that exits with ``DatabaseDamage/exitCode`` (65: its store is damaged, see its log) is never
/// restarted: supervision gives up at once, as systemd does (`RestartPreventExitStatus=65`).
struct Supervised {
    static let quickDeath = Duration.seconds(10)
    static let maxQuickDeaths = 5

    let executable: URL
    let arguments: [String]
    private(set) var process = Process()
    private(set) var started = false
    private var startedAt = ContinuousClock.now
    private var quickDeaths = 0
    private var restartAt: ContinuousClock.Instant?

    init(executable: URL, arguments: [String]) {
        self.executable = executable
        self.arguments = arguments
    }

    enum State {
        case running
        case restarting(String)
        case givingUp(String)
    }

    mutating func start() throws {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        try process.run()
        self.process = process
        started = true
        startedAt = .now
        restartAt = nil
    }

    /// Checks the daemon; restarts it when its backoff has passed.
    mutating func supervise() -> State {
        let name = executable.lastPathComponent
        if let restartAt {
            guard ContinuousClock.now >= restartAt else { return .running }
            do { try start() } catch {
                return .givingUp("cannot restart \(name): \(error)")
            }
            return .running
        }
        guard !process.isRunning else { return .running }
        if process.terminationReason == .exit, process.terminationStatus == DatabaseDamage.exitCode {
            return .givingUp("\(name) exited with \(DatabaseDamage.exitCode): its data is damaged (its log line above names the file, the copy in corrupt/ and what to do); restarting will not help, so it is not restarted")
        }
        let how = process.terminationReason == .uncaughtSignal ? "was killed by signal \(process.terminationStatus)"
            : "exited with \(process.terminationStatus)"
        quickDeaths = ContinuousClock.now - startedAt < Self.quickDeath ? quickDeaths + 1 : 1
        guard quickDeaths < Self.maxQuickDeaths else {
            return .givingUp("\(name) \(how), its \(quickDeaths)th death within \(Self.quickDeath) of starting; giving up")
        }
        let delay = Duration.milliseconds(500) * (1 << (quickDeaths - 1))
        restartAt = .now + delay
        return .restarting("\(name) \(how); restarting it in \(delay)")
    }
}
