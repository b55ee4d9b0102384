import Foundation
import Intake
import Logging
import Rentals
import Testing
@testable import Allocator
@testable import Spool

/// The allocator's decisions, in process.
@Suite struct AllocatorTests {
    private func service(units: [StorageUnit]) throws -> (AllocationService, Spool) {
        let (_, spool) = try makeSpool()
        let service = try AllocationService(spool: spool, configuration: SystemConfiguration(), logger: Logger(label: "test"))
        try service.store.addUnits(units, sizes: SizeClass.defaults)
        return (service, spool)
    }

    private func request(_ id: String, size: String = "S", _ from: String, _ to: String) -> RentalRequest {
        RentalRequest(id: id, customer: "c-\(id)", contact: "c@example.com", size: size,
                      period: RentalPeriod(start: CalendarDay(iso: from)!, end: CalendarDay(iso: to)!)!,
                      submittedBy: 0, submittedByName: "root", createdAt: 0)
    }

    private func period(_ from: String, _ to: String) -> RentalPeriod {
        RentalPeriod(start: CalendarDay(iso: from)!, end: CalendarDay(iso: to)!)!
    }

    @Test func bestFitFillsTheTightestGapThenTheLowestId() {
        let units = ["A", "B", "C"].map { StorageUnit(id: $0, size: "S", site: "x") }
        let candidates = [
            BestFit.Candidate(unit: units[0], holdings: []),                                        // empty
            BestFit.Candidate(unit: units[1], holdings: [period("2099-01-01", "2099-02-01")]),      // adjacent before
            BestFit.Candidate(unit: units[2], holdings: [period("2099-01-01", "2099-01-20"),
                                                         period("2099-03-01", "2099-04-01")]),      // gap of 12 days before, 0 after
        ]
        #expect(BestFit.choose(for: period("2099-02-01", "2099-03-01"), among: candidates)?.id == "C")
        #expect(BestFit.choose(for: period("2099-02-05", "2099-02-10"), among: candidates)?.id == "C", "a gap between two rentals beats the end of one")
        #expect(BestFit.choose(for: period("2099-02-01", "2099-03-05"), among: candidates)?.id == "B", "next to a rental beats an empty unit")
        #expect(BestFit.choose(for: period("2099-01-10", "2099-01-15"), among: candidates)?.id == "A", "the only free one")
        let twins = [BestFit.Candidate(unit: units[1], holdings: []), BestFit.Candidate(unit: units[0], holdings: [])]
        #expect(BestFit.choose(for: period("2099-01-01", "2099-01-02"), among: twins)?.id == "A", "ties go to the lowest id")
        #expect(BestFit.earliestStart(for: period("2099-01-10", "2099-01-20"), among: [candidates[1]]) == CalendarDay(iso: "2099-02-01"))
        #expect(BestFit.alternativeSizes(to: "M", in: SizeClass.defaults) == ["L", "XL", "S"])
    }

    @Test func decisionsAreIdempotentAndCancelBeforeAllocateWins() throws {
        let (service, _) = try service(units: [StorageUnit(id: "U", size: "S", site: "x")])
        let first = request("r1", "2099-01-01", "2099-02-01")
        #expect(try service.decide(.allocate(first)) == .assigned(unit: "U"))
        #expect(try service.decide(.allocate(first)) == .noChange)
        #expect(try service.decide(.cancel(first, requestedAt: 1)) == .cancelled)
        #expect(try service.decide(.cancel(first, requestedAt: 1)) == .noChange)
        let second = request("r2", "2099-01-01", "2099-02-01")
        #expect(try service.decide(.cancel(second, requestedAt: 1)) == .cancelled)
        #expect(try service.decide(.allocate(second)) == .noChange, "a cancel seen first leaves a tombstone")
        #expect(try service.store.assignments().isEmpty)
        #expect(try service.drainOutbox() == 6, "three decisions, each a journal record and a notification")
        #expect(try service.drainOutbox() == 0)
    }

    @Test func endedRentalsComplete() throws {
        let (service, _) = try service(units: [StorageUnit(id: "U", size: "S", site: "x")])
        #expect(try service.decide(.allocate(request("old", "2000-01-01", "2000-02-01"))) == .assigned(unit: "U"))
        #expect(try service.decide(.allocate(request("new", "2099-01-01", "2099-02-01"))) == .assigned(unit: "U"))
        #expect(try service.completeEndedRentals(today: CalendarDay(iso: "2026-01-01")!) == 1)
        try service.drainOutbox()
        #expect(try service.index.entity("old").map(\.state) == "completed")
        #expect(try service.index.entity("new").map(\.state) == "assigned")
        #expect(try service.store.assignments().map(\.request) == ["new"], "a completed rental frees the unit")
    }

    /// Property: random interleavings of allocates and cancels never double-book a unit, and a
    /// request is assigned exactly when a unit was free for its whole period at that moment.
    @Test(arguments: 0..<8)
    func noUnitIsEverDoubleBooked(seed: Int) throws {
        var random = SeededGenerator(seed: UInt64(seed) &+ 99)
        let units = (0..<4).map { StorageUnit(id: "U\($0)", size: "S", site: "x") }
        let (service, _) = try service(units: units)
        var requests: [RentalRequest] = []
        for step in 0..<150 {
            if !requests.isEmpty, Int.random(in: 0..<5, using: &random) == 0 {
                _ = try service.decide(.cancel(requests.randomElement(using: &random)!, requestedAt: Int64(step)))
                continue
            }
            let start = CalendarDay(iso: "2099-01-01")!.adding(days: Int.random(in: 0..<120, using: &random))
            let made = RentalRequest(id: "r\(step)", customer: "c", contact: "c@example.com", size: "S",
                                     period: RentalPeriod(start: start, end: start.adding(days: Int.random(in: 1...30, using: &random)))!,
                                     submittedBy: 0, submittedByName: "root", createdAt: 0)
            requests.append(made)
            let held = try service.store.assignments()
            let free = units.contains { unit in !held.contains { $0.unit == unit.id && $0.period.overlaps(made.period) } }
            let decision = try service.decide(.allocate(made))
            if case .assigned = decision { #expect(free) } else { #expect(!free, "rejected although a unit was free") }
        }
        let assignments = try service.store.assignments()
        for (_, held) in Dictionary(grouping: assignments, by: \.unit) {
            let periods = held.map(\.period).sorted { $0.start < $1.start }
            for (earlier, later) in zip(periods, periods.dropFirst()) { #expect(!earlier.overlaps(later)) }
        }
    }
}
