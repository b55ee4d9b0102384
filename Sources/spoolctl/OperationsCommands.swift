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

/// Opens the configured spool for an operations command.
func openSpool(_ global: GlobalOptions) throws -> (Spool, SystemConfiguration) {
    let configuration = try global.configuration()
    do { return (try Spool(path: configuration.spoolRoot, create: true), configuration) } catch {
        throw Failure(IntakeError(error, doing: "opening the spool at \(configuration.spoolRoot)"), json: global.json)
    }
}

/// Runs `body`, reporting any error as an I/O failure (exit 74) or, for spool errors, mapped.
func operating<T>(_ global: GlobalOptions, _ what: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let failure as Failure {
        throw failure
    } catch {
        throw Failure(IntakeError.mapping(error, doing: what), json: global.json)
    }
}

struct Reconcile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Repair what a crash left behind (run from cron or a timer): reclaim expired leases, publish the allocator's outbox, complete ended rentals and expire waitlisted requests whose start has come, sweep staging debris, bring the status index up to date, and restore from the allocator store the status of decided requests the index lacks. Exits 65 if the journal records it read are damaged (each damaged segment is named and copied to corrupt/), or if the allocator store is damaged (checked whole; copied to corrupt/ and left in place).")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .customLong("rebuild-index"), help: "Rebuild the status index from the journal instead of catching up.")
    var rebuildIndex = false

    func run() throws {
        try global.requireDaemonRights(to: "reconcile the spool")
        let (spool, configuration) = try openSpool(global)
        let logger = DaemonLogging.bootstrap("reconcile", environment: SystemConfiguration.currentEnvironment())
        var report = JournalDamageReport()
        let summary: [String: Any] = try operating(global, "reconcile") {
            var reclaimed = 0
            for name in QueueName.rentalQueues {
                reclaimed += try spool.queue(name, retry: RetryPolicy(maxAttempts: configuration.maxAttempts)).reclaimExpiredLeases().count
            }
            let service = try AllocationService(spool: spool, configuration: configuration, logger: logger)
            let published = try service.drainOutbox()
            let (completed, expired) = try service.dailyPass()
            try service.drainOutbox()
            let swept = try spool.sweepStaging()
            let index = try StatusIndex(spool: spool)
            let journal = try Journal(spool: spool)
            var projected = 0
            var damage: [JournalDamage]
            if rebuildIndex { damage = try index.rebuild(from: journal) } else { (projected, damage) = try index.catchUpReportingDamage(from: journal) }
            // The allocator store holds every decision: put back what the journal lost.
            let restore = try service.restoreIndexFromStore(spool: spool)
            // Queue items are single copies too: put back what a damaged (quarantined) one held.
            let requeued = try service.requeueLostItems(spool: spool)
            report = JournalDamageReport(damage: damage, restored: restore.restored,
                                         unrestored: try JournalDamageReport.unrestored(damage, index: index))
            try index.checkpoint()  // bound the WAL files
            try AllocatorStore(spool: spool).checkpoint()
            return ["reclaimed_leases": reclaimed, "outbox_published": published, "completed_rentals": completed,
                    "waitlisted_expired": expired,
                    "staging_files_removed": swept, "journal_records_projected": projected, "index_rebuilt": rebuildIndex,
                    "index_restored_from_allocator_store": restore.restored.count,
                    "lost_commands_requeued": requeued.commands.count, "lost_notifications_requeued": requeued.notifications.count]
        }
        if global.json {
            try printJSONObject(summary.merging(report.jsonFields) { first, _ in first })
        } else {
            try emit(Table(headers: ["CHECK", "RESULT"], rows: summary.keys.sorted().map { [$0, "\(summary[$0]!)"] }).render())
            try report.printDetails()
        }
        if let failure = report.failure { throw failure }
    }
}

struct Queues: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queues", abstract: "Show queue depths, the admission breaker and the allocator's health.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let (spool, configuration) = try openSpool(global)
        let report: (queues: [(String, QueueCounts)], breaker: AdmissionControl.State, health: AllocatorHealth) = try operating(global, "reading the queues") {
            let queues = try QueueName.rentalQueues.map { ($0.rawValue, try spool.queue($0).counts()) }
            let records = try RecordDirectory(spool: spool, path: "state")
            let breaker = try AdmissionControl(configuration: configuration, queue: spool.queue(.allocation), records: records).currentState()
            let health = try records.read(AllocatorHealth.recordName).flatMap { try? JSONDecoder().decode(AllocatorHealth.self, from: Data($0)) }
            return (queues, breaker, health ?? AllocatorHealth())
        }
        if global.json {
            struct Report: Encodable {
                var queues: [String: QueueCounts]
                var breaker: AdmissionControl.State
                var allocatorHealth: AllocatorHealth
                enum CodingKeys: String, CodingKey { case queues, breaker, allocatorHealth = "allocator_health" }
            }
            try printJSON(Report(queues: Dictionary(uniqueKeysWithValues: report.queues), breaker: report.breaker, allocatorHealth: report.health))
            return
        }
        try emit(Table(headers: ["QUEUE", "READY", "DEFERRED", "ACTIVE", "DEAD"],
                    rows: report.queues.map { [$0.0, "\($0.1.ready)", "\($0.1.deferred)", "\($0.1.active)", "\($0.1.dead)"] }).render())
        try emit("")
        for line in Self.healthLines(breaker: report.breaker, health: report.health, configuration: configuration) { try emit(line) }
    }

    /// The breaker and the allocator's health, each with its time, so that they cannot be read as
    /// contradicting each other: the breaker's reason is what it saw when it opened (the failure
    /// count then), the allocator's count is its latest report.
    static func healthLines(breaker: AdmissionControl.State, health: AllocatorHealth, configuration: SystemConfiguration,
                            now: Int64 = Clock.nowMilliseconds()) -> [String] {
        var lines: [String] = []
        if breaker.state == "open" {
            let remaining = (breaker.openedAt + Int64(configuration.breakerCooldownSeconds) * 1000 - now + 999) / 1000
            let when = remaining > 0 ? "new requests refused for \(remaining) s more" : "cooldown over: the next submit probes and closes it if all is well"
            lines.append("breaker: open since \(Timestamp(milliseconds: breaker.openedAt)) (\(when))")
            if !breaker.reason.isEmpty { lines.append("  opened because \(breaker.reason)") }
        } else {
            lines.append("breaker: \(breaker.state)")
        }
        let since = health.updatedAt > 0 ? " (reported \(Timestamp(milliseconds: health.updatedAt)))" : ""
        lines.append("allocator now: \(health.consecutiveFailures) failure\(health.consecutiveFailures == 1 ? "" : "s") in a row\(since)"
                     + (health.consecutiveFailures > 0 ? ", last: \(health.lastError ?? "unknown error")" : ""))
        return lines
    }
}

struct Dead: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead",
        abstract: "List, retry or purge dead-lettered items.",
        subcommands: [ListDead.self, RetryDead.self, PurgeDead.self])

    static func queue(_ global: GlobalOptions, _ name: String, operatorAction: String?) throws -> Queue {
        let (spool, configuration) = try openSpool(global)
        if let operatorAction { try global.requireOperator(global.caller(configuration), to: operatorAction) }
        guard let queueName = QueueName(validating: name), QueueName.rentalQueues.contains(queueName) else {
            throw Failure(IntakeError(.usage, "unknown queue \(name.echoed); queues are \(QueueName.rentalQueues.map(\.rawValue).joined(separator: ", "))"),
                          json: global.json)
        }
        return try operating(global, "opening queue \(name)") { try spool.queue(queueName) }
    }

    static func itemID(_ text: String, _ global: GlobalOptions) throws -> ItemID {
        guard let id = ItemID(text) else { throw Failure(IntakeError(.badData, "\(text.echoed) is not an item id"), json: global.json) }
        return id
    }

    struct ListDead: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List dead-lettered items.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Queue: allocation or notifications.") var queue = "notifications"

        func run() throws {
            try global.requireOperator(to: "inspect dead letters")
            let target = try Dead.queue(global, queue, operatorAction: "inspect dead letters")
            let letters = try operating(global, "listing dead letters") { try target.deadLetters() }
            if global.json {
                try printJSONObject(letters.map { ["id": $0.id.rawValue, "attempts": $0.attempts, "last_error": $0.lastError] as [String: Any] })
            } else if letters.isEmpty {
                try emit("no dead letters in \(queue)")
            } else {
                try emit(Table(headers: ["ID", "ATTEMPTS", "LAST ERROR"], rows: letters.map { [$0.id.rawValue, "\($0.attempts)", $0.lastError] }).render())
            }
        }
    }

    struct RetryDead: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "retry", abstract: "Put a dead-lettered item back in its queue.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Queue: allocation or notifications.") var queue = "notifications"
        @Argument(help: "Item id.") var id: String

        func run() throws {
            try global.requireOperator(to: "retry dead letters")
            let target = try Dead.queue(global, queue, operatorAction: "retry dead letters")
            let itemID = try Dead.itemID(id, global)
            try operating(global, "retrying \(id)") { try target.retryDeadLetter(itemID) }
            if global.json { try printJSONObject(["id": id, "result": "requeued"]) } else { try emit("item \(id) requeued in \(queue)") }
        }
    }

    struct PurgeDead: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "purge", abstract: "Delete a dead-lettered item for good.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Queue: allocation or notifications.") var queue = "notifications"
        @Argument(help: "Item id.") var id: String

        func run() throws {
            try global.requireOperator(to: "purge dead letters")
            let target = try Dead.queue(global, queue, operatorAction: "purge dead letters")
            let itemID = try Dead.itemID(id, global)
            try operating(global, "purging \(id)") { try target.purgeDeadLetter(itemID) }
            if global.json { try printJSONObject(["id": id, "result": "purged"]) } else { try emit("item \(id) purged from \(queue)") }
        }
    }
}

struct Index: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Maintain the status index.", subcommands: [Rebuild.self])

    struct Rebuild: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rebuild", abstract: "Rebuild the status index from the journal alone. Exits 65 if the journal is damaged (each damaged segment is named and copied to corrupt/; run reconcile to restore decided requests).")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try global.requireOperator(to: "rebuild the index")
            let (spool, configuration) = try openSpool(global)
            try global.requireOperator(global.caller(configuration), to: "rebuild the index")
            let (count, report) = try operating(global, "rebuilding the index") { () -> (Int, JournalDamageReport) in
                let index = try StatusIndex(spool: spool)
                let damage = try index.rebuild(from: try Journal(spool: spool))
                return (try index.count(),
                        JournalDamageReport(damage: damage, unrestored: try JournalDamageReport.unrestored(damage, index: index)))
            }
            if global.json {
                try printJSONObject((["entities": count] as [String: Any]).merging(report.jsonFields) { first, _ in first })
            } else {
                try emit("status index rebuilt: \(count) requests")
                try report.printDetails()
            }
            if let failure = report.failure(hint: "run `spoolctl reconcile` to restore decided requests from the allocator store") {
                throw failure
            }
        }
    }
}
