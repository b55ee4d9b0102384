import DaemonRuntime
import Foundation
import Intake
import Logging
import Rentals
import Synchronization
import Testing
@testable import Allocator
@testable import Notifier
@testable import Spool

/// Group commit in the daemons: several ready items per transaction and per directory sync,
/// with every guarantee of one item at a time.
@Suite struct GroupCommitTests {
    static let quiet = Logger(label: "group", factory: { _ in SwiftLogNoOpLogHandler() })

    private func request(_ id: String, customer: String = "alice", _ from: String = "2099-01-01", _ to: String = "2099-02-01") -> RentalRequest {
        RentalRequest(id: id, customer: customer, contact: "\(customer)@example.com", size: "S",
                      period: RentalPeriod(start: CalendarDay(iso: from)!, end: CalendarDay(iso: to)!)!,
                      submittedBy: 0, submittedByName: "root", createdAt: 0)
    }

    private func claimAll(_ queue: Queue) throws -> [ClaimedItem] {
        var items: [ClaimedItem] = []
        while let item = try queue.claimNext(lease: .seconds(300)) { items.append(item) }
        return items
    }

    /// A group of allocation items is decided in one transaction, each command once: a
    /// duplicate command in the group and a redelivered group change nothing, an undecodable
    /// item is rejected alone, and a cancel in the same group as its allocate wins whichever
    /// comes first (the claim order of a group follows the buckets, not the enqueue order).
    @Test func anAllocationGroupDecidesEachCommandOnce() throws {
        let (_, spool) = try makeSpool()
        let service = try AllocationService(spool: spool, configuration: SystemConfiguration(), logger: Self.quiet)
        try service.store.addUnits([StorageUnit(id: "U1", size: "S", site: "x"), StorageUnit(id: "U2", size: "S", site: "x")], sizes: SizeClass.defaults)
        let health = HealthReporter(records: try RecordDirectory(spool: spool, path: "state"), logger: Self.quiet)
        let queue = try spool.queue(.allocation)
        // rb's period collides with no other request, so it is never rejected for lack of units:
        // whichever of its allocate and cancel the group decides first, it ends cancelled (a
        // request rejected before its cancel would stay rejected, which is not what this tests).
        let (a, b, c, d) = (request("ra"), request("rb", "2099-03-01", "2099-04-01"), request("rc"), request("rd"))
        for command in [AllocationCommand.allocate(a), .allocate(b), .allocate(a), .allocate(c), .allocate(d), .cancel(b, requestedAt: 5)] {
            try queue.enqueue(canonicalJSON(command))
        }
        try queue.enqueue(Array("not a command".utf8))
        let group = try claimAll(queue)
        #expect(group.count == 7)
        let outcomes = try AllocatorDaemon.handle(group, service: service, health: health, logger: Self.quiet)
        #expect(outcomes.filter { $0 == .done }.count == 6)
        #expect(outcomes.filter { if case .reject = $0 { true } else { false } }.count == 1)
        let held = try service.store.assignments()
        #expect(Set(held.map(\.unit)).count == held.count, "no unit held twice for one period")
        #expect(!held.contains { $0.request == "rb" })
        #expect(try service.index.entity("rb").map(\.state) == "cancelled")
        for id in ["ra", "rc", "rd"] {
            let state = try service.index.entity(id).map(\.state)
            #expect(state == (held.contains { $0.request == id } ? "assigned" : "rejected"), "\(id)")
        }
        // Redelivered (a crash before the acknowledgement): nothing is decided or published again.
        let published = try service.notifications.counts().ready
        #expect(try AllocatorDaemon.handle(group, service: service, health: health, logger: Self.quiet) == outcomes)
        #expect(try service.store.assignments().map(\.request) == held.map(\.request))
        #expect(try service.notifications.counts().ready == published, "no second notification")
        #expect(queue.acknowledge(group.enumerated().filter { outcomes[$0.offset] == .done }.map(\.element)).isEmpty)
    }

    /// The group's acknowledgements remove every done item with one sync of `active/`; an item
    /// acknowledged before (its lease lost) is reported, the others are still removed.
    @Test func aGroupIsAcknowledgedWithOneSyncOfActive() throws {
        let syncs = Mutex<[String]>([])
        var calls = FileSystemCalls.live
        let live = FileSystemCalls.live
        let names = Mutex<[Int32: String]>([:])
        calls.open = { directory, name, flags, mode throws(SystemCallError) in
            let fd = try live.open(directory, name, flags, mode)
            names.withLock { $0[fd] = name }
            return fd
        }
        calls.fsync = { fd throws(SystemCallError) in
            try live.fsync(fd)
            syncs.withLock { $0.append(names.withLock { $0[fd] } ?? "?") }
        }
        let (_, spool) = try makeSpool(calls: calls)
        let queue = try spool.queue(.allocation)
        for index in 0..<5 { try queue.enqueue(Array("item \(index)".utf8)) }
        let group = try claimAll(queue)
        try queue.acknowledge(group[0])
        syncs.withLock { $0.removeAll() }
        let failures = queue.acknowledge(group)
        #expect(failures.map(\.item.id) == [group[0].id])
        #expect(syncs.withLock { $0 } == ["active"], "one sync for the four removals")
        #expect(try queue.counts() == QueueCounts())
    }

    /// A notification group writes and syncs every message before linking it, syncs each
    /// Maildir's `new/` once (after its links) and `delivered/` once (after those syncs, before
    /// the journal), and a redelivered group delivers nothing twice.
    @Test func aNotificationGroupSyncsEachMailboxOnceBeforeRecordingTheDeliveries() throws {
        let scratch = TemporaryDirectory("group")
        let log = Mutex<[String]>([])
        let paths = Mutex<[Int32: String]>([:])
        var calls = FileSystemCalls.live
        let live = FileSystemCalls.live
        calls.open = { directory, name, flags, mode throws(SystemCallError) in
            let fd = try live.open(directory, name, flags, mode)
            let parent = paths.withLock { $0[directory] } ?? ""
            paths.withLock { $0[fd] = name.hasPrefix("/") ? name : "\(parent)/\(name)" }
            return fd
        }
        calls.fsync = { fd throws(SystemCallError) in
            try live.fsync(fd)
            log.withLock { $0.append("fsync \(paths.withLock { $0[fd] } ?? "?")") }
        }
        calls.link = { a, b, c, d throws(SystemCallError) in
            try live.link(a, b, c, d)
            log.withLock { $0.append("link \(paths.withLock { $0[c] } ?? "?")/\(d)") }
        }
        var spoolConfiguration = Spool.Configuration()
        spoolConfiguration.calls = calls
        let spool = try Spool(path: scratch.sub("spool"), create: true, configuration: spoolConfiguration)
        var configuration = SystemConfiguration()
        configuration.spoolRoot = scratch.sub("spool")
        configuration.maildirRoot = scratch.sub("mail")
        let service = try NotificationService(spool: spool, configuration: configuration, logger: Self.quiet)
        let queue = try spool.queue(.notifications)
        let notifications = [request("n1"), request("n2"), request("n3", customer: "bob")].map {
            CustomerNotification(kind: .confirmation, request: $0, unit: "U1", site: "x", decidedAt: 0)
        }
        for notification in notifications { try queue.enqueue(canonicalJSON(notification)) }
        let group = try claimAll(queue)
        log.withLock { $0.removeAll() }
        #expect(service.handle(group) == [.done, .done, .done])
        let events = log.withLock { $0 }
        let aliceNew = events.indices.filter { events[$0].hasSuffix("/alice/new") && events[$0].hasPrefix("fsync") }
        let bobNew = events.indices.filter { events[$0].hasSuffix("/bob/new") && events[$0].hasPrefix("fsync") }
        #expect(aliceNew.count == 1 && bobNew.count == 1, "\(events)")
        let links = events.indices.filter { events[$0].hasPrefix("link") && events[$0].contains("/new/") }
        #expect(links.count == 3 && links.allSatisfy { $0 < aliceNew[0] && $0 < bobNew[0] })
        let recorded = events.indices.filter { events[$0].hasPrefix("link") && events[$0].contains("delivered/") }
        let deliveredSync = events.indices.filter { events[$0].hasPrefix("fsync") && events[$0].hasSuffix("delivered") }
        #expect(recorded.count == 3 && deliveredSync.count == 1, "\(events)")
        #expect(recorded.allSatisfy { $0 > max(aliceNew[0], bobNew[0]) && $0 < deliveredSync[0] })
        for notification in notifications {
            let file = "\(scratch.sub("mail"))/\(notification.request.customer)/new/\(notification.eventId)"
            #expect(FileManager.default.fileExists(atPath: file))
            #expect(try service.index.entity(notification.request.id).map(\.state) == "confirmed")
        }
        // Redelivered: nothing is linked again.
        log.withLock { $0.removeAll() }
        #expect(service.handle(group) == [.done, .done, .done])
        #expect(log.withLock { $0 }.filter { $0.hasPrefix("link") && $0.contains("/new/") }.isEmpty)
    }
}
