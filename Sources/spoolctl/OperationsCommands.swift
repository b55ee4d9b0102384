#if canImport(Glibc)
import Glibc
#endif
import Allocator
import ArgumentParser
import Foundation
import Intake
import Logging
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
    } catch let error as SpoolError {
        throw Failure(IntakeError(error, doing: what), json: global.json)
    } catch {
        throw Failure(IntakeError(.ioError, "\(what): \(error)"), json: global.json)
    }
}

struct Reconcile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Repair what a crash left behind (run from cron or a timer): reclaim expired leases, publish the allocator's outbox, complete ended rentals, sweep staging debris, bring the status index up to date.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .customLong("rebuild-index"), help: "Rebuild the status index from the journal instead of catching up.")
    var rebuildIndex = false

    func run() throws {
        let (spool, configuration) = try openSpool(global)
        let logger = DaemonLogging.bootstrap("reconcile", environment: SystemConfiguration.currentEnvironment())
        let summary: [String: Any] = try operating(global, "reconcile") {
            var reclaimed = 0
            for name in QueueName.rentalQueues {
                reclaimed += try spool.queue(name, retry: RetryPolicy(maxAttempts: configuration.maxAttempts)).reclaimExpiredLeases().count
            }
            let service = try AllocationService(spool: spool, configuration: configuration, logger: logger)
            let published = try service.drainOutbox()
            let completed = try service.completeEndedRentals()
            try service.drainOutbox()
            let swept = try spool.sweepStaging()
            let index = try StatusIndex(spool: spool)
            let journal = try Journal(spool: spool)
            var projected = 0
            if rebuildIndex { try index.rebuild(from: journal) } else { projected = try index.catchUp(from: journal) }
            try index.checkpoint()  // bound the WAL files (issue 7, item 16)
            try AllocatorStore(spool: spool).checkpoint()
            return ["reclaimed_leases": reclaimed, "outbox_published": published, "completed_rentals": completed,
                    "staging_files_removed": swept, "journal_records_projected": projected, "index_rebuilt": rebuildIndex]
        }
        if global.json { printJSONObject(summary); return }
        print(Table(headers: ["CHECK", "RESULT"], rows: summary.keys.sorted().map { [$0, "\(summary[$0]!)"] }).render())
    }
}

struct Queues: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show queue depths, the admission breaker and the allocator's health.")

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
            printJSON(Report(queues: Dictionary(uniqueKeysWithValues: report.queues), breaker: report.breaker, allocatorHealth: report.health))
            return
        }
        print(Table(headers: ["QUEUE", "READY", "DEFERRED", "ACTIVE", "DEAD"],
                    rows: report.queues.map { [$0.0, "\($0.1.ready)", "\($0.1.deferred)", "\($0.1.active)", "\($0.1.dead)"] }).render())
        print("")
        print("breaker: \(report.breaker.state)\(report.breaker.reason.isEmpty ? "" : " (\(report.breaker.reason))")")
        print("allocator failures in a row: \(report.health.consecutiveFailures)")
    }
}

struct Dead: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, retry or purge dead-lettered items.",
        subcommands: [ListDead.self, RetryDead.self, PurgeDead.self])

    static func queue(_ global: GlobalOptions, _ name: String, operatorAction: String?) throws -> Queue {
        let (spool, configuration) = try openSpool(global)
        if let operatorAction { try global.requireOperator(global.caller(configuration), to: operatorAction) }
        guard let queueName = QueueName(validating: name), QueueName.rentalQueues.contains(queueName) else {
            throw Failure(IntakeError(.usage, "unknown queue \(name.debugDescription); queues are \(QueueName.rentalQueues.map(\.rawValue).joined(separator: ", "))"),
                          json: global.json)
        }
        return try operating(global, "opening queue \(name)") { try spool.queue(queueName) }
    }

    static func itemID(_ text: String, _ global: GlobalOptions) throws -> ItemID {
        guard let id = ItemID(text) else { throw Failure(IntakeError(.badData, "\(text.debugDescription) is not an item id"), json: global.json) }
        return id
    }

    struct ListDead: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List dead-lettered items.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Queue: allocation or notifications.") var queue = "notifications"

        func run() throws {
            let target = try Dead.queue(global, queue, operatorAction: "inspect dead letters")
            let letters = try operating(global, "listing dead letters") { try target.deadLetters() }
            if global.json {
                printJSONObject(letters.map { ["id": $0.id.rawValue, "attempts": $0.attempts, "last_error": $0.lastError] as [String: Any] })
            } else if letters.isEmpty {
                print("no dead letters in \(queue)")
            } else {
                print(Table(headers: ["ID", "ATTEMPTS", "LAST ERROR"], rows: letters.map { [$0.id.rawValue, "\($0.attempts)", $0.lastError] }).render())
            }
        }
    }

    struct RetryDead: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "retry", abstract: "Put a dead-lettered item back in its queue.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Queue: allocation or notifications.") var queue = "notifications"
        @Argument(help: "Item id.") var id: String

        func run() throws {
            let target = try Dead.queue(global, queue, operatorAction: "retry dead letters")
            let itemID = try Dead.itemID(id, global)
            try operating(global, "retrying \(id)") { try target.retryDeadLetter(itemID) }
            if global.json { printJSONObject(["id": id, "result": "requeued"]) } else { print("item \(id) requeued in \(queue)") }
        }
    }

    struct PurgeDead: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "purge", abstract: "Delete a dead-lettered item for good.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Queue: allocation or notifications.") var queue = "notifications"
        @Argument(help: "Item id.") var id: String

        func run() throws {
            let target = try Dead.queue(global, queue, operatorAction: "purge dead letters")
            let itemID = try Dead.itemID(id, global)
            try operating(global, "purging \(id)") { try target.purgeDeadLetter(itemID) }
            if global.json { printJSONObject(["id": id, "result": "purged"]) } else { print("item \(id) purged from \(queue)") }
        }
    }
}

struct Index: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Maintain the status index.", subcommands: [Rebuild.self])

    struct Rebuild: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Rebuild the status index from the journal alone.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let (spool, configuration) = try openSpool(global)
            try global.requireOperator(global.caller(configuration), to: "rebuild the index")
            let count = try operating(global, "rebuilding the index") { () -> Int in
                let index = try StatusIndex(spool: spool)
                try index.rebuild(from: try Journal(spool: spool))
                return try index.dump().count
            }
            if global.json { printJSONObject(["entities": count]) } else { print("status index rebuilt: \(count) requests") }
        }
    }
}
