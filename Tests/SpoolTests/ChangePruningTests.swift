import Foundation
import Rentals
import Testing
@testable import Allocator
@testable import Spool

/// The retention pruning and the keys of changes (`extend:<id>:<change>`, `end:<id>:<change>`):
/// a change writes no row, so its key is never a tombstone; it lives as long as its rental.
@Suite struct ChangePruningTests {
    private func change(_ kind: RentalChange.Kind, _ request: String, _ day: String, id: String) -> AllocationCommand {
        let change = RentalChange(id: id, kind: kind, request: request, day: CalendarDay(iso: day)!, requestedAt: 1,
                                  requestedBy: 0, requestedByName: "root")
        return kind == .extend ? .extend(change) : .end(change)
    }

    @Test func aLiveRentalKeepsItsChangeKeysAndAPrunedOneLeavesNone() throws {
        let world = try PruningWorld()
        try world.decide([.allocate(world.request("live", "2099-06-01", "2099-07-01")),
                          .allocate(world.request("gone", "2099-01-01", "2099-02-01"))])
        // Each revision's message is delivered before the next is decided: the notifier claims in
        // no fixed order, and a change message handled after a later revision's delivered one is
        // superseded (not delivered), which is not what this test is about.
        var decisions = try world.decide([change(.extend, "live", "2099-08-01", id: "c1"), change(.extend, "gone", "2099-02-10", id: "c3")])
        var deliveries = try world.deliverAll()
        decisions += try world.decide([change(.end, "live", "2099-07-15", id: "c2")])
        deliveries += try world.deliverAll()
        #expect(decisions.allSatisfy { if case .changed = $0 { true } else { false } }, "\(decisions)")
        #expect(deliveries == 5)
        #expect(try world.state().delivered.isSuperset(of: ["live-extension-r1", "live-end-r2", "gone-extension-r1"]))
        usleep(2_000)
        let completion = Clock.nowMilliseconds()
        #expect(try world.allocator.completeEndedRentals(today: CalendarDay(iso: "2099-03-01")!, now: completion) == 1)
        try world.allocator.drainOutbox()
        let day = PruningWorld.day, horizon = world.horizon

        // The finished rental goes with its change key; the live one's keys stay, past the horizon too.
        var counts = try world.prune(now: completion + day + 1)
        #expect(counts["rentals_pruned"] == 1, "\(counts)")
        var state = try world.state()
        #expect(state.rentals["gone"] == nil)
        #expect(!state.processed.keys.contains { $0.contains("gone:") }, "\(state.processed)")
        #expect(state.processed.keys.contains("extend:live:c1") && state.processed.keys.contains("end:live:c2"))

        counts = try world.prune(now: completion + day + 2 + 2 * horizon)
        state = try world.state()
        #expect(state.processed.keys.filter { $0.hasSuffix(":live:c1") || $0.hasSuffix(":live:c2") }.sorted() == ["end:live:c2", "extend:live:c1"],
                "a change key is no tombstone: \(state.processed)")
        #expect(!state.processed.keys.contains { $0.contains("gone") }, "the tombstones went after the horizon: \(state.processed)")
        #expect(!state.delivered.contains("gone-extension-r1") && !state.delivered.contains("gone-confirmation"),
                "delivery records of every kind and revision go with their request: \(state.delivered)")
        #expect(state.delivered.isSuperset(of: ["live-extension-r1", "live-end-r2"]))
        // A redelivered change of the pruned rental finds no row: refused, nothing written.
        #expect(try world.decide([change(.extend, "gone", "2099-02-20", id: "c3")]) == [.refused(reason: "request gone has no rental to change")])
        #expect(!(try world.state().processed.keys.contains { $0.contains("gone") }))
    }
}
