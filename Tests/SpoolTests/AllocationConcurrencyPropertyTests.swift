import Foundation
import GRDB
import Logging
import Rentals
import Synchronization
import Testing
@testable import Allocator
@testable import Spool

/// The allocation invariants when several allocators decide at once: 4 threads, each with its
/// own `AllocationService` (its own store connections, as two allocator processes would have)
/// on one spool, decide random groups of 1–3 commands (`decide([…])`: submit ± waiting list
/// ± site, cancel, extend, end) while a fifth changes the inventory, and a checker reads the
/// store continuously. At every checkpoint and at the end: no unit holds overlapping assigned
/// periods, and no waitlisted request fits a free unit (saturation). Any store error is a
/// failure, SQLite's overlap trigger (`overlapping assignment`) above all: it fires only when
/// the code chose an overlapping unit.
@Suite struct AllocationConcurrencyPropertyTests {
    static let features = AllocationPropertyHarness.features
    static let today = AllocationPropertyHarness.origin

    final class Shared: Sendable {
        let requests = Mutex<[RentalRequest]>([])
        let failures = Mutex<[String]>([])
        let decided = Atomic<Int>(0)
        let done = Atomic<Bool>(false)
        func fail(_ text: String) { failures.withLock { $0.append(text) } }
    }

    static func now(_ tick: Int) -> Int64 { AllocationPropertyHarness.noon(ofDay: today) + Int64(tick) }

    /// One worker's random groups of commands.
    static func work(worker: Int, spool: Spool, groups: Int, shared: Shared) {
        do {
            let service = try AllocationService(spool: spool, configuration: SystemConfiguration(), logger: Logger(label: "w\(worker)", factory: { _ in SwiftLogNoOpLogHandler() }))
            var random = SeededGenerator(seed: UInt64(worker) &* 7_919 &+ 17)
            for group in 0..<groups {
                var commands: [AllocationCommand] = []
                for index in 0..<Int.random(in: 1...3, using: &random) {
                    commands.append(try command(worker: worker, serial: group * 10 + index, service: service, shared: shared, &random))
                }
                do {
                    _ = try service.decide(commands, now: now(group))
                    shared.decided.add(commands.count, ordering: .relaxed)
                } catch {
                    let trigger = "\(error)".contains("overlapping assignment")
                    shared.fail("worker \(worker) group \(group) \(commands.map(\.idempotencyKey)): \(trigger ? "SQLite's overlap trigger fired (the code chose an overlapping unit): " : "")\(error)")
                }
            }
        } catch {
            shared.fail("worker \(worker): \(error)")
        }
    }

    static func command(worker: Int, serial: Int, service: AllocationService, shared: Shared, _ random: inout SeededGenerator) throws -> AllocationCommand {
        let known = shared.requests.withLock { $0 }
        let roll = Int.random(in: 0..<100, using: &random)
        if roll < 55 || known.isEmpty {
            let start = today + Int.random(in: 1...30, using: &random)
            let request = RentalRequest(
                id: "W\(worker)-\(serial)", customer: "c", contact: "c@example.com", size: ["S", "M", "L"].randomElement(using: &random)!,
                period: RentalPeriod(start: CalendarDay(daysSinceEpoch: start), end: CalendarDay(daysSinceEpoch: start + Int.random(in: 1...20, using: &random)))!,
                submittedBy: 1000, submittedByName: "customer", createdAt: now(serial),
                site: features.sites ? [nil, "north", "south"].randomElement(using: &random)! : nil,
                waitlist: features.waitlist && Bool.random(using: &random))
            shared.requests.withLock { $0.append(request) }
            return .allocate(request)
        }
        let target = known.randomElement(using: &random)!
        if roll < 75 || !features.changes { return .cancel(target, requestedAt: now(serial)) }
        let held = try service.store.read { db in
            try GRDB.Row.fetchOne(db, sql: "SELECT start_day, end_day FROM rental WHERE request_id = ?", arguments: [target.id])
                .map { (start: $0["start_day"] as Int, end: $0["end_day"] as Int) }
        }
        let (start, end) = held ?? (target.period.start.daysSinceEpoch, target.period.end.daysSinceEpoch)
        let extend = roll < 90 || end - 1 <= max(start, today)
        let day = extend ? end + Int.random(in: 1...10, using: &random) : max(end - Int.random(in: 1...10, using: &random), start + 1, today)
        let change = RentalChange(id: String(format: "X%d%05d%020d", worker, serial, 0), kind: extend ? .extend : .end, request: target.id,
                                  day: CalendarDay(daysSinceEpoch: day), requestedAt: now(serial), requestedBy: 1000, requestedByName: "customer")
        return extend ? .extend(change) : .end(change)
    }

    /// Units added, retired and put back while the workers decide.
    static func changeInventory(spool: Spool, rounds: Int, shared: Shared) {
        do {
            let store = try AllocatorStore(spool: spool)
            var random = SeededGenerator(seed: 99)
            for round in 0..<rounds {
                let id = "N\(round % 4)"
                let hook = WaitlistPromotion(units: [id], configuration: SystemConfiguration(), today: CalendarDay(daysSinceEpoch: today)).hook
                if round < 4 {
                    try store.addUnits([StorageUnit(id: id, size: ["S", "M", "L"].randomElement(using: &random)!, site: "south")],
                                       sizes: SizeClass.defaults, afterChange: hook)
                } else if Bool.random(using: &random) {
                    try store.retireUnit(id)
                } else if features.reinstate {
                    try store.reinstateUnit(id, afterChange: hook)
                }
            }
        } catch {
            shared.fail("inventory: \(error)")
        }
    }

    /// Overlap and saturation on one consistent snapshot; nil when both hold.
    static func violation(_ store: AllocatorStore) throws -> String? {
        try store.read { db in
            if let overlap = try String.fetchOne(db, sql: """
                SELECT a.unit_id || ': ' || a.request_id || ' and ' || b.request_id FROM rental a JOIN rental b
                  ON a.unit_id = b.unit_id AND a.request_id < b.request_id
                WHERE a.state = 'assigned' AND b.state = 'assigned' AND a.start_day < b.end_day AND b.start_day < a.end_day LIMIT 1
                """) { return "overlapping assignments on unit \(overlap)" }
            if let unsaturated = try String.fetchOne(db, sql: """
                SELECT w.request_id || ' fits free unit ' || u.id FROM waitlist w JOIN unit u
                  ON u.size = w.size AND u.in_service = 1 AND (w.site IS NULL OR u.site = w.site)
                WHERE w.start_day > ? AND NOT EXISTS (SELECT 1 FROM rental r WHERE r.state = 'assigned' AND r.unit_id = u.id
                                                      AND r.start_day < w.end_day AND r.end_day > w.start_day)
                LIMIT 1
                """, arguments: [today]) { return "saturation broken: \(unsaturated)" }
            return nil
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func invariantsHoldWithFourAllocatorsAtOnce() throws {
        let directory = try AllocationPropertyHarness.scratchDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: directory)
            rmdir(AllocationPropertyHarness.scratchRoot)
        }
        let spool = try Spool(path: directory + "/spool", create: true)
        let checker = try AllocatorStore(spool: spool)
        var units: [StorageUnit] = []
        for (index, size) in ["S", "S", "M", "M", "L"].enumerated() { units.append(StorageUnit(id: "U\(index)", size: size, site: index % 2 == 0 ? "north" : "south")) }
        try checker.addUnits(units, sizes: SizeClass.defaults)
        let shared = Shared()
        let groups = 60
        let finished = DispatchGroup()
        var threads: [Thread] = []
        for worker in 0..<5 {
            finished.enter()
            threads.append(Thread {
                if worker < 4 { Self.work(worker: worker, spool: spool, groups: groups, shared: shared) } else { Self.changeInventory(spool: spool, rounds: 12, shared: shared) }
                finished.leave()
            })
        }
        threads.forEach { $0.start() }
        let checking = DispatchGroup()
        checking.enter()
        let checkpoints = Thread {
            // Checks snapshots for as long as the workers run (at least once).
            var checked = 0
            repeat {
                do {
                    if let violation = try Self.violation(checker) { shared.fail("checkpoint \(checked): \(violation)") }
                } catch { shared.fail("checkpoint: \(error)") }
                checked += 1
            } while !shared.done.load(ordering: .acquiring)
            checking.leave()
        }
        checkpoints.start()
        finished.wait()
        shared.done.store(true, ordering: .releasing)
        checking.wait()
        #expect(try Self.violation(checker) == nil)
        let failures = shared.failures.withLock { $0 }
        #expect(failures.isEmpty, "\(failures.prefix(5).joined(separator: "\n"))")
        #expect(shared.decided.load(ordering: .relaxed) >= 4 * groups)
        let assigned = try checker.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM rental WHERE state = 'assigned'") ?? 0 }
        #expect(assigned > 0)
        if Self.features.waitlist {
            // The waiting list was in play: requests waited, and some were promoted (revision ≥ 1).
            let (waited, promoted) = try checker.read { db in
                (try Int.fetchOne(db, sql: "SELECT count(*) FROM rental WHERE state = 'waitlisted' OR status LIKE '%\"waitlist\"%' OR status LIKE '%\"revision\"%'") ?? 0,
                 try Int.fetchOne(db, sql: "SELECT count(*) FROM rental WHERE state = 'assigned' AND status LIKE '%\"revision\"%'") ?? 0)
            }
            #expect(waited > 0 && promoted > 0, "waited \(waited), promoted \(promoted)")
        }
    }
}
