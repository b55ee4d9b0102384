import Foundation
import Logging
import Rentals
import Testing
@testable import Allocator
@testable import Notifier
@testable import Spool

/// Retention and the dead letters: a request a dead letter still needs stays in the journal and
/// the index (found by the adversarial review of issue 10).
@Suite struct CompactionDeadLetterTests {
    /// A confirmation that went dead (the hook was down), then a cancellation delivered: the
    /// request is finished. Compacted past retention, then the dead confirmation retried (as an
    /// operator does once the hook works again): the notifier must still see the cancellation,
    /// so it confirms nothing and the request stays cancelled. Dropped from the journal and the
    /// index, the request had no status left, and the cancelled rental was confirmed and journaled
    /// `confirmed` again.
    @Test func aDeadNotificationKeepsItsRequestThroughRetention() throws {
        let world = try PruningWorld()
        let request = world.request("late", "2099-05-01", "2099-06-01")
        try world.decide([.allocate(request)])
        let confirmation = try #require(try world.notifications.claim(id: ItemID("late-confirmation")!, lease: .seconds(60)))
        try world.notifications.deadLetter(confirmation, error: "hook down")
        try world.decide([.cancel(request, requestedAt: Clock.nowMilliseconds())])
        #expect(try world.deliverAll() == 1, "the cancellation")
        let journal = try Journal(spool: world.spool)
        try journal.rotate()
        let now = Timestamp(milliseconds: Clock.nowMilliseconds() + 2 * PruningWorld.day)

        let mayDrop = RetentionPruning.compactionMayDrop(spool: world.spool, configuration: world.configuration, now: now)
        let (report, _) = try journal.compact(now: now.milliseconds, mayDrop: mayDrop, archive: nil)
        #expect(report.entitiesDropped == 0, "a dead letter mentions the request")
        let index = try StatusIndex(spool: world.spool, journal: journal)
        _ = try index.rebuild(from: journal)
        #expect(try index.entity("late")?.state == "cancelled")

        let runs = world.hookRuns()
        try world.notifications.retryDeadLetter(ItemID("late-confirmation")!)
        let notifier = try NotificationService(spool: world.spool, configuration: world.configuration, logger: Logger(label: "test"))
        let item = try #require(try world.notifications.claimNext(lease: .seconds(60)))
        #expect(notifier.handle(item) == .done)
        try world.notifications.acknowledge(item)
        #expect(world.hookRuns() == runs, "a cancelled rental is not confirmed")
        _ = try index.catchUp(from: journal)
        #expect(try index.entity("late")?.state == "cancelled")

        // Once the dead letter is gone, a later compaction drops the request.
        let again = RetentionPruning.compactionMayDrop(spool: world.spool, configuration: world.configuration, now: now)
        try journal.rotate()
        let (second, _) = try journal.compact(now: now.milliseconds, mayDrop: again, archive: nil)
        #expect(second.entitiesDropped == 1)
    }

    /// The same dead confirmation, after the journal and the index were lost (`reconcile`
    /// restores the decisions from the allocator store): the restore brings the cancelled
    /// request back, because a dead letter still needs it; the retry then confirms nothing.
    @Test func reconcileRestoresARequestADeadLetterNeeds() throws {
        let world = try PruningWorld()
        let request = world.request("late", "2099-05-01", "2099-06-01")
        try world.decide([.allocate(request)])
        let confirmation = try #require(try world.notifications.claim(id: ItemID("late-confirmation")!, lease: .seconds(60)))
        try world.notifications.deadLetter(confirmation, error: "hook down")
        try world.decide([.cancel(request, requestedAt: Clock.nowMilliseconds())])
        #expect(try world.deliverAll() == 1, "the cancellation")
        for directory in ["journal", "index"] {
            for name in try FileManager.default.contentsOfDirectory(atPath: world.spool.path + "/" + directory)
            where name.hasSuffix(".log") || name.hasSuffix(".log.z") || name.hasPrefix("status.sqlite") {
                try FileManager.default.removeItem(atPath: world.spool.path + "/" + directory + "/" + name)
            }
        }
        let now = Timestamp(milliseconds: Clock.nowMilliseconds() + 2 * PruningWorld.day)
        let service = try AllocationService(spool: world.spool, configuration: world.configuration, logger: Logger(label: "test"))
        let restored = try service.restoreIndexFromStore(spool: world.spool, now: now)
        #expect(restored.restored == ["late"])

        let runs = world.hookRuns()
        try world.notifications.retryDeadLetter(ItemID("late-confirmation")!)
        let notifier = try NotificationService(spool: world.spool, configuration: world.configuration, logger: Logger(label: "test"))
        let item = try #require(try world.notifications.claimNext(lease: .seconds(60)))
        #expect(notifier.handle(item) == .done)
        try world.notifications.acknowledge(item)
        #expect(world.hookRuns() == runs, "a cancelled rental is not confirmed")
        _ = try service.index.catchUp(from: service.journal)
        #expect(try service.index.entity("late")?.state == "cancelled")
    }
}
