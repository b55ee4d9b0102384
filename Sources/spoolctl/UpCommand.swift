#if canImport(Glibc)
import Glibc
#endif
import Allocator
import ArgumentParser
import Foundation
import Intake
import Spool

struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(
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
        var children: [Process] = []
        for name in ["spool-allocator", "spool-notifier"] {
            let process = Process()
            process.executableURL = directory.appendingPathComponent(name)
            process.arguments = arguments
            do { try process.run() } catch {
                children.forEach { $0.terminate() }
                throw Failure(IntakeError(.ioError, "cannot start \(name) from \(directory.path): \(error)"), json: global.json)
            }
            children.append(process)
        }
        let stop = StopSignal()
        stop.triggerOnTermination()
        inform("""
            allocator and notifier running on \(configuration.spoolRoot); Ctrl-C stops them.
            try: spoolctl submit --customer alice@example.com --contact alice@example.com --size M --from \(CalendarDay.today().adding(days: 7)) --months 3 --wait
            """)
        var failed = false
        while !stop.isTriggered {
            if let dead = children.first(where: { !$0.isRunning }) {
                complain("\(dead.executableURL?.lastPathComponent ?? "daemon") exited with \(dead.terminationStatus); stopping")
                failed = true
                break
            }
            stop.wait(timeout: .milliseconds(200))
        }
        for child in children where child.isRunning { kill(child.processIdentifier, SIGTERM) }
        for child in children { child.waitUntilExit() }
        inform("stopped")
        if failed { throw Failure(IntakeError(.ioError, "a daemon stopped unexpectedly"), json: false) }
    }
}
