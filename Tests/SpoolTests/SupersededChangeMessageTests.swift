import Foundation
import Logging
import Rentals
import Testing
@testable import Allocator
@testable import Notifier
@testable import Spool

/// Adversary (issue 11, phase 2): two revisions of one rental queued for the notifier, and the
/// older one's item handled last (a second worker, or a failed delivery retried after the next
/// revision was delivered). Before the fix the customer's last message said "extended until
/// 2099-03-01" while the rental ends on 2099-01-15.
@Suite struct SupersededChangeMessageTests {
    private func change(_ id: String, _ kind: RentalChange.Kind, _ day: String) -> AllocationCommand {
        let change = RentalChange(id: id, kind: kind, request: "r", day: CalendarDay(iso: day)!, requestedAt: 1,
                                  requestedBy: 0, requestedByName: "root")
        return kind == .extend ? .extend(change) : .end(change)
    }

    private func kinds(_ world: PruningWorld) -> [String] {
        filesBelow(world.directory.sub("maildir")).filter { $0.contains("/new/") }.compactMap { name -> String? in
            let text = (try? String(contentsOfFile: world.directory.sub("maildir/\(name)"), encoding: .utf8)) ?? ""
            return text.split(separator: "\n").first { $0.hasPrefix("X-Notification-Kind: ") }.map { String($0.dropFirst(21)) }
        }.sorted()
    }

    @Test func anOlderRevisionsMessageHandledLastIsNotDelivered() throws {
        let world = try PruningWorld(units: ["U1"], hook: false)
        #expect(try world.decide([.allocate(world.request("r", "2099-01-01", "2099-02-01"))]) == [.assigned(unit: "U1")])
        #expect(try world.deliverAll() == 1)
        _ = try world.decide([change("c1", .extend, "2099-03-01")])
        let older = try #require(try world.notifications.claimNext(lease: .seconds(60)))  // revision 1, held back
        _ = try world.decide([change("c2", .end, "2099-01-15")])
        #expect(try world.deliverAll() == 1, "revision 2 (the end) delivered first")
        #expect(world.notifier.handle(older) == .done)
        try world.notifications.acknowledge(older)
        #expect(kinds(world) == ["confirmation", "end"], "the stale extension is not the customer's last message")
        let status = try #require(world.notifier.currentStatus("r"))
        #expect(status.revision == 2 && status.to == CalendarDay(iso: "2099-01-15") && status.state == .confirmed)
    }
}
