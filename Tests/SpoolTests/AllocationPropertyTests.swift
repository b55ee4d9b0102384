import Foundation
import PropertyBased
import Testing
@testable import Allocator

/// The allocation invariants under random sequences of operations (issue 11: "no unit is ever
/// assigned to overlapping periods, through extensions and waitlist promotions included").
///
/// Each scenario starts with 2–6 units (3 sizes, 2 sites) and applies 50–300 random operations:
/// submit (± waiting list, ± site), cancel, extend, end, units add/change/retire/reinstate and
/// day advances (the daily pass), each decided by `AllocationService` on a real store in a
/// temporary spool (on tmpfs when there is one), beside a pure-Swift reference model. After
/// every step ``AllocationPropertyHarness`` checks the invariants it lists (overlap,
/// saturation, versions, refused extensions, FCFS, agreement with the model).
///
/// Runs: 100 scenarios by default (about 25 s of CPU; 1–2 minutes on a loaded machine); set
/// `SPOOL_PROPERTY_RUNS` for a long run, e.g.
/// `SPOOL_PROPERTY_RUNS=5000 swift test --disable-xctest --filter AllocationPropertyTests`.
/// A failure prints the shrunk scenario (fewest operations, simplest fields) with the step and
/// the invariant it broke, and the seed to pass to `.fixedSeed(…)` to replay it; each violation
/// found is to be kept in this file as a regression test of its own (docs/reliability.md, promise 12).
@Suite struct AllocationPropertyTests {
    static let runs = ProcessInfo.processInfo.environment["SPOOL_PROPERTY_RUNS"].flatMap { Int($0) }.map { max($0, 1) } ?? 100

    /// Random scenarios, shrinking toward fewer operations, fewer units and zero fields.
    static let scenarios = Generator<AllocationScenario, [AllocationScenario]>(
        run: { rng in
            let units = (0..<Int.random(in: 2...6, using: &rng)).map { _ in [Int.random(in: 0...2, using: &rng), Int.random(in: 0...1, using: &rng)] }
            let ops = (0..<Int.random(in: 50...300, using: &rng)).map { _ in
                AllocationOpCode(kind: Int.random(in: 0..<100, using: &rng), a: Int.random(in: 0...63, using: &rng), b: Int.random(in: 0...63, using: &rng),
                                 c: Int.random(in: 0...63, using: &rng), d: Int.random(in: 0...63, using: &rng))
            }
            return AllocationScenario(units: units, ops: ops)
        },
        shrink: { scenario in shrink(scenario) })

    /// Smaller scenarios, most shrunk first: chunks of operations removed (halves down to
    /// single ones), a unit removed, then each operation's fields set to 0 one at a time.
    static func shrink(_ scenario: AllocationScenario) -> [AllocationScenario] {
        var candidates: [AllocationScenario] = []
        let count = scenario.ops.count
        var chunk = count / 2
        while chunk >= 1 {
            for start in stride(from: 0, to: count, by: chunk) {
                var smaller = scenario
                smaller.ops.removeSubrange(start..<min(start + chunk, count))
                candidates.append(smaller)
            }
            chunk /= 2
        }
        if scenario.units.count > 1 {
            for index in scenario.units.indices {
                var smaller = scenario
                smaller.units.remove(at: index)
                candidates.append(smaller)
            }
        }
        for index in scenario.ops.indices {
            for field in [\AllocationOpCode.a, \.b, \.c, \.d] where scenario.ops[index][keyPath: field] != 0 {
                var smaller = scenario
                smaller.ops[index][keyPath: field] = 0
                candidates.append(smaller)
            }
        }
        return candidates
    }

    /// Runs `scenario`; the first violation, or nil.
    static func violation(_ scenario: AllocationScenario) throws -> String? {
        let harness = try AllocationPropertyHarness(scenario)
        defer { harness.removeScratch() }
        return harness.run()
    }

    @Test(.timeLimit(.minutes(60)))
    func invariantsHoldUnderRandomOperations() async throws {
        await propertyCheck(count: Self.runs, input: Self.scenarios) { scenario in
            let violation = try Self.violation(scenario)
            #expect(violation == nil, "\(violation ?? "")\nscenario: \(scenario)")
        }
    }

    /// The generator makes what the tests claim: lengths, inventory, every kind of operation.
    @Test func scenariosCoverEveryOperation() {
        var rng = Xoshiro(seed: (11, 12, 13, 14))
        let scenario = Self.scenarios.run(using: &rng)
        #expect((50...300).contains(scenario.ops.count))
        #expect((2...6).contains(scenario.units.count))
        var rng2 = Xoshiro(seed: (21, 22, 23, 24))
        let kinds = (0..<20).flatMap { _ in Self.scenarios.run(using: &rng2).ops.map(\.decodedKind) }
        for kind in [AllocationOpCode.Kind.submit, .cancel, .extend, .end, .addUnit, .changeUnit, .retire, .reinstate, .advance] {
            #expect(kinds.contains(kind), "\(kind)")
        }
        #expect(Self.shrink(scenario).allSatisfy { $0.ops.count < scenario.ops.count || $0.units.count < scenario.units.count || $0.ops != scenario.ops })
    }

    /// The scenarios reach what the invariants are about: waiting, promotions (after cancels, ends
    /// and inventory changes), expiries, applied and refused changes.
    @Test func scenariosExerciseTheFeatures() throws {
        var rng = Xoshiro(seed: (31, 32, 33, 34))
        var exercised: [String: Int] = [:]
        for _ in 0..<8 {
            let harness = try AllocationPropertyHarness(Self.scenarios.run(using: &rng))
            defer { harness.removeScratch() }
            #expect(harness.run() == nil)
            exercised.merge(harness.exercised, uniquingKeysWith: +)
        }
        var wanted = ["assigned", "rejected", "cancelled", "noChange", "priced"]
        if AllocationPropertyHarness.features.waitlist { wanted += ["waitlisted", "promoted", "expired"] }
        if AllocationPropertyHarness.features.changes { wanted += ["changed", "refused"] }
        for key in wanted { #expect(exercised[key, default: 0] > 0, "\(key): \(exercised)") }
    }

    /// The checks can fail: a store broken behind the allocator's back (an overlap written with
    /// the trigger dropped, a waitlisted request left beside a free unit) is reported.
    @Test func harnessDetectsBrokenStores() throws {
        let scenario = AllocationScenario(units: [[0, 0]], ops: [AllocationOpCode(kind: 0, a: 0, b: 0, c: 10, d: 5)])
        let harness = try AllocationPropertyHarness(scenario)
        defer { harness.removeScratch() }
        #expect(harness.run() == nil)
        let before = try harness.rows()
        try harness.service.store.write { db in
            try db.execute(sql: "DROP TRIGGER rental_no_overlap_insert")
            try db.execute(sql: "INSERT INTO rental (request_id, state, unit_id, start_day, end_day, status, updated_at) SELECT 'X', 'assigned', unit_id, start_day, end_day, '{}', 0 FROM rental")
        }
        #expect(try harness.check(before: before, after: try harness.rows(), promotedReal: [], promotedModel: [])?.contains("overlapping") == true)
        try harness.service.store.write { db in
            try db.execute(sql: "DELETE FROM rental WHERE request_id = 'X'")
            try db.execute(sql: "INSERT INTO rental (request_id, state, unit_id, start_day, end_day, status, updated_at) VALUES ('W', 'waitlisted', NULL, ?, ?, '{}', 0)",
                           arguments: [harness.model.today + 100, harness.model.today + 110])
            try db.execute(sql: "INSERT INTO waitlist (request_id, size, site, start_day, end_day, since) VALUES ('W', 'S', NULL, ?, ?, 0)",
                           arguments: [harness.model.today + 100, harness.model.today + 110])
        }
        #expect(try harness.check(before: before, after: try harness.rows(), promotedReal: [], promotedModel: [])?.contains("saturation") == true)
    }

    /// The FCFS check reads the store, not the model: a younger request promoted onto a unit an
    /// older, still waiting one fits is reported.
    @Test func harnessDetectsAnOvertakingPromotion() throws {
        let harness = try AllocationPropertyHarness(AllocationScenario(units: [[0, 1]], ops: []))
        defer { harness.removeScratch() }
        #expect(harness.run() == nil)
        let today = harness.model.today
        harness.lastWaitlist = ["OLD": .init(seq: 1, size: "S", site: nil, start: today + 10, end: today + 12),
                                "NEW": .init(seq: 2, size: "S", site: "south", start: today + 10, end: today + 11)]
        typealias Row = AllocationPropertyHarness.Row
        let before = ["OLD": Row(state: "waitlisted", unit: nil, start: today + 10, end: today + 12, status: "{}", currency: nil, amount: nil),
                      "NEW": Row(state: "waitlisted", unit: nil, start: today + 10, end: today + 11, status: "{}", currency: nil, amount: nil)]
        var after = before
        after["NEW"] = Row(state: "assigned", unit: "U0", start: today + 10, end: today + 11, status: "{}", currency: nil, amount: nil)
        #expect(try harness.check(before: before, after: after, promotedReal: ["NEW"], promotedModel: ["NEW"])?.contains("FCFS") == true)
        // Not when the older one does not fit that unit (no head-of-line blocking).
        after["OTHER"] = Row(state: "assigned", unit: "U0", start: today + 11, end: today + 13, status: "{}", currency: nil, amount: nil)
        harness.lastWaitlist["OLD"] = .init(seq: 1, size: "S", site: nil, start: today + 10, end: today + 12)
        harness.lastWaitlist["NEW"] = .init(seq: 2, size: "S", site: "south", start: today + 10, end: today + 11)
        #expect(try harness.check(before: before, after: after, promotedReal: ["NEW"], promotedModel: ["NEW"])?.contains("FCFS") != true)
    }
}
