#if canImport(Glibc)
import Glibc
#endif
import Allocator
import ArgumentParser
import DaemonRuntime
import Foundation
import Intake
import Logging
import Rentals
import Spool

/// `spoolctl compact`: journal compaction and retention (contract section 2 of issue 10; the
/// on-disk steps are in docs/spool-format.md, "Compaction").
struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Compact the journal (keep the latest event of each request in the sealed segments, remove superseded segments) and apply retention (drop finished requests older than retention_days from the journal and the status index, archived first under archive/ unless retention_archive = no). Safe beside the running daemons and at any moment of a crash; exits 75 if another compaction is running, 65 if journal damage was met (damaged segments are named, copied to corrupt/ and left as they are).")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .customLong("dry-run"), help: "Report what would be compacted and dropped; change nothing.")
    var dryRun = false

    func run() throws {
        try global.requireDaemonRights(to: "compact the journal")
        // Before the spool opens: its logger (the "journal compacted" line) follows SPOOL_LOG_LEVEL.
        let logger = DaemonLogging.bootstrap("compact", environment: SystemConfiguration.currentEnvironment())
        let (spool, configuration) = try openSpool(global)
        let policy = RetentionPolicy(configuration)
        let now = Timestamp.now()
        var report = JournalDamageReport()
        let outcome: (compaction: JournalCompactionReport, indexRebuilt: Bool)
        do {
            outcome = try compactAndFollow(spool: spool, configuration: configuration, policy: policy, now: now, report: &report)
        } catch let failure as Failure {
            throw failure
        } catch let busy as CompactionBusy {
            throw Failure(IntakeError(.tryAgain, "\(busy); try again later", retryAfterSeconds: 60), json: global.json)
        } catch let error as SpoolError where error.isLockTimeout {
            throw Failure(IntakeError(.tryAgain, "the journal is compacted but the status index is busy (a reader holds it); run compact again to drop the rows of dropped requests", retryAfterSeconds: 60), json: global.json)
        } catch {
            throw Failure(IntakeError.mapping(error, doing: "compacting the journal"), json: global.json)
        }
        let (compaction, indexRebuilt) = outcome
        // Then the allocator's and notifier's records that retention and the redelivery horizon
        // allow to go (contract section 3; RetentionPruning says why each removal is safe).
        let pruned = try operating(global, "pruning the allocator's and notifier's records") {
            try RetentionPruning.prune(spool: spool, configuration: configuration, now: now,
                                       dryRun: dryRun, logger: logger).counts
        }
        try Self.print(compaction, indexRebuilt: indexRebuilt, pruned: pruned, policy: policy, dryRun: dryRun,
                       damage: report, json: global.json)
        if let failure = report.failure(hint: "damaged segments and those before them were left as they are") { throw failure }
    }

    /// Compacts the journal, then rebuilds the index if rows must go (see ``run()``).
    private func compactAndFollow(spool: Spool, configuration: SystemConfiguration, policy: RetentionPolicy, now: Timestamp,
                                  report: inout JournalDamageReport) throws -> (JournalCompactionReport, Bool) {
        // Retention never drops a request a queue entry (a dead letter too) still needs.
        let mayDrop = RetentionPruning.compactionMayDrop(spool: spool, configuration: configuration, now: now)
        let journal = try Journal(spool: spool)
        let archive = RetentionArchive(spool: spool)
        let writer: Journal.ArchiveWriter? = policy.archive ? { events in try archive.write(events) } : nil
        let (compaction, damage) = try journal.compact(dryRun: dryRun, now: now.milliseconds, mayDrop: mayDrop, archive: writer)
        report.damage = damage
        // The index follows the journal: rows of dropped requests go by a rebuild from the
        // compacted journal (small now), renamed over the live index under its lock. Also after
        // a crash between the two steps: rows the journal no longer has.
        let index = try StatusIndex(spool: spool, journal: journal)
        var rebuilt = false
        if !dryRun {
            let stale = compaction.entitiesDropped > 0 ? [] : try index.rowsDroppedFromJournal(journal, mayDrop: mayDrop)
            if compaction.entitiesDropped > 0 || !stale.isEmpty {
                try index.rebuild(from: journal)
                rebuilt = true
            }
        }
        report.unrestored = try JournalDamageReport.unrestored(damage, index: index)
        return (compaction, rebuilt)
    }

    static func print(_ compaction: JournalCompactionReport, indexRebuilt: Bool, pruned: [String: Int], policy: RetentionPolicy,
                      dryRun: Bool, damage: JournalDamageReport, json: Bool) throws {
        var summary: [String: Any] = [
            "dry_run": dryRun, "retention_days": policy.days ?? 0, "retention_archive": policy.archive,
            "segments_compacted": compaction.segmentsCompacted, "segments_written": compaction.segmentsWritten,
            "segments_removed": compaction.segmentsRemoved, "records_before": compaction.recordsBefore,
            "records_after": compaction.recordsAfter, "requests_dropped": compaction.entitiesDropped,
            "journal_bytes_before": compaction.journalBytesBefore, "journal_bytes_after": compaction.journalBytesAfter,
            "index_rebuilt": indexRebuilt, "unchanged": compaction.unchanged,
        ]
        if let archive = compaction.archive { summary["archive"] = archive }
        if let kept = compaction.keptFromDamagedSegment { summary["kept_through_damaged_segment"] = Int(kept) }
        for (name, count) in pruned { summary[name] = count }
        if json {
            try printJSONObject(summary.merging(damage.jsonFields) { first, _ in first })
        } else {
            try emit(Table(headers: ["CHECK", "RESULT"], rows: summary.keys.sorted().map { [$0, "\(summary[$0]!)"] }).render())
            try damage.printDetails()
        }
    }
}

extension SpoolError {
    /// True for a lock that was not obtained in time (``FileLock`` with a timeout).
    var isLockTimeout: Bool {
        if case .system(_, _, let error) = self { return error.errno == EWOULDBLOCK }
        return false
    }
}
