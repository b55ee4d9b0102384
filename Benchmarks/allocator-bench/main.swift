// allocator-bench: the allocator's decisions per second against the number of rentals its store
// holds, and its memory over a long run, in process (the library, not the daemon).
//
//   allocator-bench history --spool DIR [--requests 100000] [--days 365]   (History.swift: scripts/space-figure)
//   allocator-bench decisions [--rentals 0,5000,50000] [--decisions 300] [--pairs 3] [--held-from 1] [--quick]
//       For each pair, for each rental count (alternated in one run): a fresh spool whose store
//       holds that many assigned rentals (written straight into the store), then `--decisions`
//       allocate commands decided one by one (`AllocationService.decide`, one transaction each,
//       publishing nothing). Prints decisions/s and the ratio to the empty store of the same pair
//       (min/median/max over the pairs). Only ratios mean anything on a shared machine.
//   allocator-bench memory [--requests 50000] [--group 1]
//       Decides and publishes (`decide` + `drainOutbox`, as the daemon's handler does; with
//       `--group N`, N commands per transaction) `--requests` commands against 400 units, and
//       prints VmRSS/VmHWM every tenth of the run.
#if canImport(Glibc)
import Glibc
#endif
import Allocator
import Foundation
import GRDB
import Rentals
import Logging
import Spool

let arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}
let quick = arguments.contains("--quick")

func scratch(_ label: String) -> String {
    var template = Array("/var/tmp/allocator-bench-\(label).XXXXXX".utf8CString)
    return String(cString: mkdtemp(&template)!)
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// A deterministic generator (SplitMix64), so every run decides the same requests.
struct Generator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476C_E5B9_E34D
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

let sizes = ["S", "M", "L", "XL"]
let unitsPerSize = Int(option("--units-per-size") ?? "") ?? 100
let today = CalendarDay.today()
/// The first day of the held rentals, in days from today: 1 (default) puts them where the
/// decided requests fall (days 1 to 1,000: many rejections at 50,000); 1,100 puts them all after
/// (the same decisions as on an empty store, so only the cost of holding them differs).
let heldFrom = Int(option("--held-from") ?? "") ?? 1

func request(_ id: String, size: String, start: CalendarDay, days: Int) -> RentalRequest {
    RentalRequest(id: id, customer: "c\(id)", contact: "c@example.com", size: size,
                  period: RentalPeriod(start: start, end: start.adding(days: days))!,
                  submittedBy: 0, submittedByName: "bench", createdAt: 0)
}

/// A spool whose store holds `unitsPerSize` units of each size and `rentals` assigned rentals,
/// spread evenly over the units, back to back with gaps, from tomorrow on.
func preparedSpool(rentals: Int, random: inout Generator) throws -> (String, Spool) {
    let root = scratch("r\(rentals)")
    let spool = try Spool(path: root + "/spool", create: true)
    let store = try AllocatorStore(spool: spool)
    let units = sizes.flatMap { size in (0..<unitsPerSize).map { StorageUnit(id: "\(size)-\($0)", size: size, site: "bench") } }
    try store.addUnits(units, sizes: SizeClass.defaults)
    let database = try DatabaseQueue(path: store.path)
    try database.write { db in
        var next = [Int](repeating: today.daysSinceEpoch + heldFrom, count: units.count)
        for index in 0..<rentals {
            let unit = index % units.count
            let start = CalendarDay(daysSinceEpoch: next[unit] + Int.random(in: 0...20, using: &random))
            let days = Int.random(in: 10...40, using: &random)
            next[unit] = start.daysSinceEpoch + days
            let made = request("pre\(index)", size: units[unit].size, start: start, days: days)
            var status = RentalStatus(received: made)
            status.state = .assigned
            status.unit = units[unit].id
            status.site = units[unit].site
            try db.execute(sql: """
                INSERT INTO rental (request_id, state, unit_id, start_day, end_day, status, updated_at)
                VALUES (?, 'assigned', ?, ?, ?, ?, 0)
                """, arguments: [made.id, units[unit].id, start.daysSinceEpoch, start.daysSinceEpoch + days, status.jsonText()])
        }
    }
    // As a running allocator keeps it (automatic checkpoints): the WAL folded into the store.
    try database.writeWithoutTransaction { db in _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    try database.close()
    return (root, spool)
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

/// CPU time (user + system) of this process so far, in seconds: steadier than the wall clock
/// when fsync switches between its fast and slow modes.
func cpuSeconds() -> Double {
    var usage = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &usage)
    return Double(usage.tv_sec) + Double(usage.tv_nsec) / 1e9
}

func decisions() throws {
    let counts = (option("--rentals") ?? (quick ? "0,2000" : "0,5000,50000")).split(separator: ",").compactMap { Int($0) }
    let decisionCount = Int(option("--decisions") ?? "") ?? (quick ? 50 : 300)
    let pairs = Int(option("--pairs") ?? "") ?? (quick ? 1 : 3)
    print("allocator decisions/s, \(unitsPerSize) units per size (\(sizes.count) sizes), \(decisionCount) decisions per run, \(pairs) pair(s), rentals held from day \(heldFrom)")
    var rates: [Int: [Double]] = [:]
    var cpuCosts: [Int: [Double]] = [:]
    for pair in 0..<pairs {
        for rentals in counts {
            var random = Generator(state: UInt64(rentals) &+ 17)
            let (root, spool) = try preparedSpool(rentals: rentals, random: &random)
            let service = try AllocationService(spool: spool, configuration: SystemConfiguration(), logger: Logger(label: "bench"))
            var requests: [RentalRequest] = []
            for index in 0..<decisionCount {
                let start = today.adding(days: Int.random(in: 1...1_000, using: &random))
                requests.append(request("p\(pair)d\(index)", size: sizes.randomElement(using: &random)!, start: start,
                                        days: Int.random(in: 7...60, using: &random)))
            }
            var assigned = 0, rejected = 0
            let cpuBefore = cpuSeconds()
            let elapsed = try seconds {
                for made in requests {
                    switch try service.decide(.allocate(made)) {
                    case .assigned: assigned += 1
                    case .rejected: rejected += 1
                    default: break
                    }
                }
            }
            let cpu = (cpuSeconds() - cpuBefore) / Double(decisionCount) * 1e6
            rates[rentals, default: []].append(Double(decisionCount) / elapsed)
            cpuCosts[rentals, default: []].append(cpu)
            print(String(format: "  pair %d  rentals %6d  %8.1f decisions/s  %7.0f us CPU/decision  (%d assigned, %d rejected)",
                         pair, rentals, Double(decisionCount) / elapsed, cpu, assigned, rejected))
            try? FileManager.default.removeItem(atPath: root)
        }
    }
    guard let base = rates[counts[0]] else { return }
    for rentals in counts {
        let ratios = zip(rates[rentals]!, base).map { $0 / $1 }.sorted()
        let cpuRatios = zip(cpuCosts[counts[0]]!, cpuCosts[rentals]!).map { $0 / $1 }.sorted()
        print(String(format: "rentals %6d  median %8.1f/s  rate ratio to %d rentals: min %.2f median %.2f max %.2f;  CPU-rate ratio (empty CPU/decision over this one): min %.2f median %.2f max %.2f",
                     rentals, median(rates[rentals]!), counts[0], ratios.first!, median(ratios), ratios.last!,
                     cpuRatios.first!, median(cpuRatios), cpuRatios.last!))
    }
}

func status(_ field: String) -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return -1 }
    return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
}

func memory() throws {
    let total = Int(option("--requests") ?? "") ?? (quick ? 2_000 : 50_000)
    let group = max(1, Int(option("--group") ?? "") ?? 1)
    var random = Generator(state: 7)
    let (root, spool) = try preparedSpool(rentals: 0, random: &random)
    defer { try? FileManager.default.removeItem(atPath: root) }
    let service = try AllocationService(spool: spool, configuration: SystemConfiguration(), logger: Logger(label: "bench"))
    print("allocator memory: \(total) requests, \(group) per transaction; kB")
    print("  requests     VmRSS    VmHWM")
    var done = 0
    let started = ContinuousClock.now
    while done < total {
        var commands: [AllocationCommand] = []
        for _ in 0..<min(group, total - done) {
            let start = today.adding(days: Int.random(in: 1...3_000, using: &random))
            commands.append(.allocate(request("m\(done + commands.count)", size: sizes.randomElement(using: &random)!, start: start,
                                              days: Int.random(in: 7...60, using: &random))))
        }
        for command in commands { _ = try service.decide(command) }
        try service.drainOutbox()
        let before = done
        done += commands.count
        if before / (total / 10) != done / (total / 10) || done == total {
            print(String(format: "  %8d  %8d  %8d", done, status("VmRSS"), status("VmHWM")))
        }
    }
    let elapsed = ContinuousClock.now - started
    print("  \(total) requests in \(elapsed)")
}

/// `fill --spool DIR --requests N [--rentals R]`: a spool for the real daemon: the store with its
/// units (and R assigned rentals), and N allocate commands queued as `spoolctl submit` queues them.
func fill() throws {
    guard let path = option("--spool") else { throw CocoaError(.fileNoSuchFile) }
    let total = Int(option("--requests") ?? "") ?? 1_000
    var random = Generator(state: 11)
    let rentals = Int(option("--rentals") ?? "") ?? 0
    let (root, _) = try preparedSpool(rentals: rentals, random: &random)
    try FileManager.default.moveItem(atPath: root + "/spool", toPath: path)
    try? FileManager.default.removeItem(atPath: root)
    let spool = try Spool(path: path, create: false)
    let queue = try spool.queue(.allocation)
    for index in 0..<total {
        let start = today.adding(days: Int.random(in: 1...3_000, using: &random))
        let made = request(ItemID.generate().rawValue, size: sizes.randomElement(using: &random)!, start: start,
                           days: Int.random(in: 7...60, using: &random))
        _ = index
        try queue.enqueue(canonicalJSON(AllocationCommand.allocate(made)), id: ItemID(made.id))
    }
    print("filled \(path): \(total) allocate commands queued, \(rentals) rentals held")
}

do {
    switch arguments.first {
    case "memory": try memory()
    case "fill": try fill()
    case "history": try history()
    default: try decisions()
    }
} catch {
    FileHandle.standardError.write(Data("allocator-bench: \(error)\n".utf8))
    exit(1)
}
