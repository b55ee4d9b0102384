// Set-up and in-process probes for the whole-process rows of scripts/bench. Each builds its
// data through the library (real journal records, real queue items, the real allocator), so
// what the measured programs read is what production writes.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Allocator
import Intake
import Logging
import Rentals
import Spool

enum Tools {
    static let usage = """
        spool-bench fill-journal SPOOL COUNT IDS          append COUNT `received` status records (real
                                                          journal records, one per request), write a
                                                          sample of their ids to IDS
        spool-bench status-latency CONFIG IDS CALLS       in-process IntakeService.status: p50/p99 (ms)
        spool-bench seed-allocations SPOOL COUNT          queue COUNT allocate commands (set-up: the
                                                          item files are not fsynced)
        spool-bench allocator-rate DIR HELD DECISIONS [UNITS]
                                                          seconds for DECISIONS allocator decisions
                                                          with HELD assigned rentals in its store on
                                                          UNITS units (2,000 by default), in process
        """

    /// Runs the tool named `name`; returns the exit code.
    static func run(_ name: String, _ arguments: [String]) -> Int32 {
        do {
            switch (name, arguments.count) {
            case ("fill-journal", 3): try fillJournal(spool: arguments[0], count: Int(arguments[1])!, ids: arguments[2])
            case ("status-latency", 3): try statusLatency(config: arguments[0], ids: arguments[1], calls: Int(arguments[2])!)
            case ("seed-allocations", 2): try seedAllocations(spool: arguments[0], count: Int(arguments[1])!)
            case ("allocator-rate", 3...4):
                try allocatorRate(directory: arguments[0], held: Int(arguments[1])!, decisions: Int(arguments[2])!,
                                  units: arguments.count > 3 ? Int(arguments[3])! : 2000)
            default:
                FileHandle.standardError.write(Data((usage + "\n").utf8))
                return 64
            }
            return 0
        } catch {
            FileHandle.standardError.write(Data("spool-bench \(name): \(error)\n".utf8))
            return 1
        }
    }

    static let base = CalendarDay(iso: "2090-01-01")!
    static let sizes = ["S", "M", "L", "XL"]

    /// A request as `spoolctl submit` builds it (the caller is the one running the bench).
    static func request(_ index: Int, start: CalendarDay? = nil, days: Int = 30, size: String? = nil) -> RentalRequest {
        let from = start ?? base.adding(days: index % 3650)
        return RentalRequest(id: ItemID.generate().rawValue, customer: "bench-\(index % 997)@example.com",
                             contact: "bench-\(index % 997)@example.com", size: size ?? sizes[index % sizes.count],
                             period: RentalPeriod(start: from, end: from.adding(days: days))!, submittedBy: getuid(),
                             submittedByName: "bench", createdAt: Clock.nowMilliseconds())
    }

    static func fillJournal(spool path: String, count: Int, ids: String) throws {
        let spool = try Spool(path: path, create: true)
        let journal = try Journal(spool: spool)
        var sample: [String] = []
        let every = max(1, count / 2000)
        var group: [[UInt8]] = []
        for index in 0..<count {
            let request = request(index)
            if index % every == 0 { sample.append(request.id) }
            group.append(RentalStatus(received: request).indexEvent().encoded())
            if group.count == 1000 || index == count - 1 {
                try journal.append(group, durability: .buffered)
                group.removeAll(keepingCapacity: true)
            }
        }
        try journal.sync()
        try Data(sample.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: ids))
    }

    static func statusLatency(config: String, ids path: String, calls: Int) throws {
        let configuration = try SystemConfiguration.load(explicitPath: config, spoolOverride: nil)
        let intake = try IntakeService(configuration: configuration, logger: Logger(label: "bench"))
        let caller = Caller.current(operatorGroup: configuration.operatorGroup)
        let ids = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        var times: [Double] = []
        let clock = ContinuousClock()
        for call in 0..<calls {
            let id = ids[(call &* 7919) % ids.count]
            let start = clock.now
            _ = try intake.status(id, caller: caller)
            let elapsed = clock.now - start
            times.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1e3)
        }
        times.sort()
        print(String(format: "%.4f %.4f", times[times.count / 2], times[min(times.count - 1, times.count * 99 / 100)]))
    }

    /// The live file-system calls with `fsync` a no-op: for set-up only.
    static var unsynced: FileSystemCalls {
        var calls = FileSystemCalls.live
        calls.fsync = { _ throws(SystemCallError) in }
        return calls
    }

    static func seedAllocations(spool path: String, count: Int) throws {
        var configuration = Spool.Configuration()
        configuration.calls = unsynced
        let spool = try Spool(path: path, create: true, configuration: configuration)
        let queue = try spool.queue(.allocation)
        for index in 0..<count {
            let request = request(index)
            try queue.enqueue(canonicalJSON(AllocationCommand.allocate(request)), id: ItemID(request.id))
        }
    }

    /// Decisions/s of the allocation service, in process, with `held` assigned rentals in its
    /// store: `units` units (a quarter per size class); the held rentals are spread over the units in
    /// back-to-back 30-day periods from 2030 on; the decided requests ask for periods from 2090 on
    /// (free), so each is assigned, as most real ones are. Each decision is what the daemon does
    /// per item: decide (one store transaction) and publish the outbox (journal, notification).
    static func allocatorRate(directory: String, held: Int, decisions: Int, units unitCount: Int) throws {
        let root = "\(directory)/spool"
        var configuration = SystemConfiguration()
        configuration.spoolRoot = root
        let spool = try Spool(path: root, create: true)
        let service = try AllocationService(spool: spool, configuration: configuration, logger: Logger(label: "bench"))
        let store = try AllocatorStore(spool: spool)
        try store.addUnits((0..<unitCount).map { StorageUnit(id: "U-\($0)", size: sizes[$0 % sizes.count], site: "Site \($0 % 7)") },
                           sizes: configuration.sizes)
        try Prefill.assign(held: held, units: unitCount, store: store, service: service)
        // One decision before the clock starts: the first opens the journal segment and the
        // notification queue, compiles the statements and warms SQLite's page cache.
        _ = try service.decide(.allocate(request(0, start: base.adding(days: 4000), days: 30, size: "S")))
        _ = try service.drainOutbox()
        let clock = ContinuousClock()
        let start = clock.now
        for index in 0..<decisions {
            let request = request(index, start: base.adding(days: (index / unitCount) * 31), days: 30, size: sizes[index % sizes.count])
            _ = try service.decide(.allocate(request))
            _ = try service.drainOutbox()
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(String(format: "%.6f", seconds))
    }
}
