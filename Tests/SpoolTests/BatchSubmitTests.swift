import DaemonRuntime
import Foundation
import Logging
import Rentals
import Testing
@testable import Allocator
@testable import Intake
@testable import Spool

/// `submit --batch` in process: parsing, the one item per batch, ids, idempotency keys, the
/// breaker, restricted callers, and the allocator deciding each request once.
@Suite struct BatchSubmitTests {
    static let quiet = Logger(label: "batch", factory: { _ in SwiftLogNoOpLogHandler() })
    static let alice = Caller(uid: 4242, name: "alice", isOperator: false)
    static let bob = Caller(uid: 4343, name: "bob", isOperator: false)

    struct World {
        let directory: TemporaryDirectory
        let configuration: SystemConfiguration
        let intake: IntakeService

        /// The allocation queue's item files (waiting or claimed).
        var queuedItems: [String] {
            filesBelow("\(configuration.spoolRoot)/queues/allocation").filter { !$0.hasPrefix("dead/") }
        }

        var keyRecords: [String] { filesBelow("\(configuration.spoolRoot)/intake/keys").filter { !$0.hasSuffix(".lock") } }

        func restricted() throws -> IntakeService {
            try IntakeService(configuration: configuration, logger: quiet, restricted: true)
        }
    }

    static func world(_ change: (inout SystemConfiguration) -> Void = { _ in }) throws -> World {
        let directory = TemporaryDirectory("batch")
        var configuration = SystemConfiguration()
        configuration.spoolRoot = directory.sub("spool")
        change(&configuration)
        return World(directory: directory, configuration: configuration,
                     intake: try IntakeService(configuration: configuration, logger: quiet, restricted: false))
    }

    static func line(_ customer: String, size: String = "S", from: String = "2099-01-01", months: Int = 1, key: String? = nil) -> String {
        var fields = ["\"customer\":\"\(customer)\"", "\"contact\":\"\(customer)@example.com\"", "\"size\":\"\(size)\"",
                      "\"from\":\"\(from)\"", "\"months\":\(months)"]
        if let key { fields.append("\"idempotency_key\":\"\(key)\"") }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func bytes(_ lines: [String], separator: String = "\n", final: Bool = true) -> [UInt8] {
        Array((lines.joined(separator: separator) + (final ? separator : "")).utf8)
    }

    static func ids(_ receipt: BatchReceipt) -> [String?] {
        receipt.lines.map { if case .accepted(let id, _) = $0.outcome { id } else { nil } }
    }

    @Test func crlfBlankLinesAndAMissingFinalNewlineAreRead() throws {
        let text = Self.bytes([Self.line("a"), "", "  \t", Self.line("b"), Self.line("c")], separator: "\r\n", final: false)
        let lines = try BatchFile.parse(text)
        #expect(lines.map(\.number) == [1, 4, 5], "blank lines are skipped, and still counted")
        for line in lines { #expect(throws: Never.self) { try line.form.get() } }
        #expect(try lines[2].form.get().customer == "c", "the last line needs no newline")
    }

    @Test func aBadLineIsRefusedAloneWithItsLineAndReason() throws {
        let world = try Self.world()
        let text = Self.bytes([
            Self.line("a"),
            "not json",
            #"{"customer":"x","contact":"x@example.com","size":"S","from":"2099-01-01","months":1,"submitted_by":0}"#,
            #"{"customer":"x","contact":"x@example.com","size":"S","from":"2099-01-01"}"#,
            #"{"customer":"x","contact":"x@example.com","size":"S","from":"2099-01-01","months":"two"}"#,
            Self.line("b", size: "XXL"),
            #"[1,2]"#,
            Self.line("c", from: "2001-01-01"),
        ])
        let receipt = try world.intake.submitBatch(text, caller: Self.alice)
        #expect(receipt.lines.map(\.line) == Array(1...8))
        let refused = receipt.lines.compactMap { line -> (Int, IntakeError)? in
            if case .refused(let error) = line.outcome { (line.line, error) } else { nil }
        }
        #expect(refused.map(\.0) == [2, 3, 4, 5, 6, 7, 8])
        #expect(refused.first { $0.0 == 3 }?.1.message.contains("unknown field \"submitted_by\"") == true, "no line names who submitted it")
        #expect(refused.first { $0.0 == 4 }?.1 == IntakeError(.usage, "give the end of the rental with the field to (a date) or months (a number)"))
        #expect(refused.first { $0.0 == 6 }?.1.message.contains("unknown unit size") == true)
        #expect(refused.first { $0.0 == 8 }?.1.message.hasPrefix("from 2001-01-01 is in the past") == true, "fields, not options, in the message")
        #expect(refused.allSatisfy { !$0.1.message.contains("\n") })
        #expect(receipt.batch != nil && world.queuedItems.count == 1, "the valid line is queued")
    }

    @Test func overTheLimitsOrEmptyTheWholeBatchIsRefusedAndNothingWritten() throws {
        let world = try Self.world()
        let tooMany = Self.bytes(Array(repeating: Self.line("a"), count: BatchFile.maxLines) + [""] + [Self.line("b")])
        do { _ = try world.intake.submitBatch(tooMany, caller: Self.alice); Issue.record("10,002 lines accepted") } catch {
            #expect(error.code == .badData)
        }
        let tooLarge = Array(repeating: UInt8(ascii: " "), count: BatchFile.maxBytes) + Array(Self.line("a").utf8)
        do { _ = try world.intake.submitBatch(tooLarge, caller: Self.alice); Issue.record("over 4 MiB accepted") } catch {
            #expect(error.code == .badData)
        }
        for empty in [[], Array("\n\r\n  \n".utf8)] {
            do { _ = try world.intake.submitBatch(empty, caller: Self.alice); Issue.record("empty batch accepted") } catch {
                #expect(error.code == .usage)
            }
        }
        #expect(world.queuedItems.isEmpty)
        // Exactly at the limit is fine: 10,000 lines, one item.
        let full = try world.intake.submitBatch(Self.bytes(Array(repeating: Self.line("a"), count: BatchFile.maxLines)), caller: Self.alice)
        #expect(full.refused == 0 && full.lines.count == BatchFile.maxLines && world.queuedItems.count == 1)
        #expect(Set(Self.ids(full)).count == BatchFile.maxLines, "every request its own id")
    }

    @Test func validLinesAreOneItemOneJournalAppendAndEachHasItsOwnStatus() throws {
        let world = try Self.world()
        let receipt = try world.intake.submitBatch(Self.bytes((1...50).map { Self.line("c\($0)") }), caller: Self.alice)
        let batch = try #require(receipt.batch)
        #expect(world.queuedItems.count == 1 && world.queuedItems[0].hasSuffix("/\(batch).0.0"))
        for (offset, id) in Self.ids(receipt).enumerated() {
            #expect(id == AllocationBatch.requestID(batch: ItemID(batch)!, line: offset + 1))
            #expect(AllocationBatch.batchID(ofRequest: id!)?.rawValue == batch)
            let status = try world.intake.status(id!, caller: Self.alice)
            #expect(status.state == .received && status.customer == "c\(offset + 1)" && status.submittedBy == Self.alice.uid)
        }
        let payload = try #require(try world.intake.allocation.peek(id: ItemID(batch)!))
        #expect(AllocationBatch.decode(payload)?.requests.count == 50)
        #expect(try StatusIndex.scan(Journal(spool: world.intake.spool)).count == 50, "every received status journaled")
        // Another user sees none of them; an operator all.
        #expect(throws: IntakeError.self) { try world.intake.status(Self.ids(receipt)[0]!, caller: Self.bob) }
        #expect(try world.intake.list(state: nil, caller: Self.bob).isEmpty)
        #expect(try world.intake.list(state: nil, caller: Caller(uid: 0, name: "root", isOperator: true)).count == 50)
    }

    @Test func aRestrictedCallerFindsTheRequestsOfItsQueuedBatch() throws {
        let world = try Self.world()
        let restricted = try world.restricted()
        let receipt = try restricted.submitBatch(Self.bytes([Self.line("a"), Self.line("b")]), caller: Self.alice)
        #expect(try StatusIndex.scan(Journal(spool: world.intake.spool)).isEmpty, "a restricted submit journals nothing")
        for id in Self.ids(receipt) {
            #expect(try restricted.status(id!, caller: Self.alice).state == .received, "found in the queued batch")
            #expect(throws: IntakeError.self) { try restricted.status(id!, caller: Self.bob) }
        }
        #expect(try restricted.list(state: nil, caller: Self.alice).map(\.id).sorted() == Self.ids(receipt).compactMap { $0 }.sorted())
        #expect(try restricted.list(state: nil, caller: Self.bob).isEmpty)
        // Cancel of a queued batch request: a cancel command follows; the batch stays.
        #expect(try restricted.cancel(Self.ids(receipt)[0]!, caller: Self.alice) == .requested)
        #expect(world.queuedItems.count == 2)
    }

    @Test func idempotencyKeysWorkPerLine() throws {
        let world = try Self.world()
        let text = Self.bytes([Self.line("a", key: "k1"), Self.line("b"), Self.line("a", key: "k1"), Self.line("c", key: "k2")])
        let first = try world.intake.submitBatch(text, caller: Self.alice)
        let ids = Self.ids(first)
        #expect(first.lines.map(\.outcome) == [.accepted(id: ids[0]!, created: true), .accepted(id: ids[1]!, created: true),
                                               .accepted(id: ids[0]!, created: false), .accepted(id: ids[3]!, created: true)],
                "a key repeated within the batch names the first line's request")
        #expect(world.keyRecords.count == 2 && world.queuedItems.count == 1)
        // The batch again: keyed lines return their requests; the unkeyed line is a new request.
        let again = try world.intake.submitBatch(text, caller: Self.alice)
        #expect(again.lines[0].outcome == .accepted(id: ids[0]!, created: false))
        #expect(again.lines[3].outcome == .accepted(id: ids[3]!, created: false))
        #expect(Self.ids(again)[1] != ids[1])
        #expect(world.queuedItems.count == 2 && world.keyRecords.count == 2)
        // A single submit with the key finds the batch's request; with other data it is refused.
        let single = try world.intake.submit(RentalForm(customer: "a", contact: "a@example.com", size: "S", from: "2099-01-01", months: 1,
                                                        idempotencyKey: "k1"), caller: Self.alice)
        #expect(single == IntakeService.Submission(id: ids[0]!, created: false))
        let changed = try world.intake.submitBatch(Self.bytes([Self.line("a", size: "M", key: "k1")]), caller: Self.alice)
        guard case .refused(let error) = changed.lines[0].outcome else { Issue.record("a key reused for other data was accepted"); return }
        #expect(error.code == .badData && error.message.contains(ids[0]!))
        // Keys are per user: bob's k1 is his own.
        let bobs = try world.intake.submitBatch(Self.bytes([Self.line("a", key: "k1")]), caller: Self.bob)
        #expect(Self.ids(bobs)[0] != ids[0])
    }

    @Test func aRequestWhoseKeyWasRecordedButNeverQueuedIsQueuedOnRetry() throws {
        let world = try Self.world()
        // A batch that died after recording its key, before queueing: the key names X-00001,
        // which no queue holds.
        let orphan = RentalRequest(id: AllocationBatch.requestID(batch: ItemID.generate(), line: 1), customer: "a", contact: "a@example.com",
                                   size: "S", period: RentalPeriod(start: CalendarDay(iso: "2099-01-01")!, end: CalendarDay(iso: "2099-02-01")!)!,
                                   submittedBy: Self.alice.uid, submittedByName: "alice", createdAt: 1, idempotencyKey: "k1")
        #expect(try world.intake.keys.createOnce(world.intake.keyName("k1", Self.alice), IntakeService.keyRecord(orphan)) == nil)
        let retry = try world.intake.submitBatch(Self.bytes([Self.line("a", key: "k1"), Self.line("b")]), caller: Self.alice)
        #expect(retry.lines[0].outcome == .accepted(id: orphan.id, created: true), "the recorded request, queued now")
        #expect(world.queuedItems.count == 2, "the recorded request as an item of its own, the new line as the batch")
        #expect(try world.intake.status(orphan.id, caller: Self.alice).state == .received)
        let third = try world.intake.submitBatch(Self.bytes([Self.line("a", key: "k1")]), caller: Self.alice)
        #expect(third.lines[0].outcome == .accepted(id: orphan.id, created: false) && third.batch == nil)
        #expect(world.queuedItems.count == 2)
    }

    @Test func anOpenBreakerRefusesTheWholeBatchAndWritesNothing() throws {
        let world = try Self.world { $0.breakerHighWater = 1 }
        try world.intake.allocation.enqueue(Array("{}".utf8))
        do {
            _ = try world.intake.submitBatch(Self.bytes([Self.line("a", key: "k1"), Self.line("b")]), caller: Self.alice)
            Issue.record("admitted over the high-water mark")
        } catch {
            #expect(error.code == .tryAgain)
        }
        #expect(world.queuedItems.count == 1 && world.keyRecords.isEmpty)
    }

    @Test(arguments: 0..<8) func everyLineGetsTheResultItsOwnValidationGives(seed: Int) throws {
        let world = try Self.world()
        var random = SeededGenerator(seed: UInt64(seed) &+ 2026)
        var lines: [String] = []
        var valid: [Bool] = []
        for index in 0..<Int.random(in: 1...60, using: &random) {
            switch Int.random(in: 0..<6, using: &random) {
            case 0: lines.append(Self.line("c\(index)", size: "Q")); valid.append(false)
            case 1: lines.append("{\"customer\":"); valid.append(false)
            case 2: lines.append(""); valid.append(true)
            default: lines.append(Self.line("c\(index)", months: Int.random(in: 1...36, using: &random))); valid.append(true)
            }
        }
        guard lines.contains(where: { !$0.isEmpty }) else { return }
        let receipt = try world.intake.submitBatch(Self.bytes(lines, separator: Bool.random(using: &random) ? "\r\n" : "\n"), caller: Self.alice)
        let expectedLines = lines.indices.filter { !lines[$0].isEmpty }.map { $0 + 1 }
        #expect(receipt.lines.map(\.line) == expectedLines)
        for result in receipt.lines {
            switch result.outcome {
            case .accepted(let id, let created):
                #expect(valid[result.line - 1] && created && id.hasSuffix("-" + String(format: "%05d", result.line)))
            case .refused:
                #expect(!valid[result.line - 1])
            }
        }
        let accepted = receipt.lines.count - receipt.refused
        #expect(world.queuedItems.count == (accepted > 0 ? 1 : 0))
        if let batch = receipt.batch, let payload = try world.intake.allocation.peek(id: ItemID(batch)!) {
            #expect(AllocationBatch.decode(payload)?.requests.map(\.id) == Self.ids(receipt).compactMap { $0 })
        }
    }

    @Test func theAllocatorDecidesEachRequestOnceEvenWhenTheBatchIsRetriedMidway() throws {
        let world = try Self.world()
        let receipt = try world.intake.submitBatch(Self.bytes((1...7).map { Self.line("c\($0)") }), caller: Self.alice)
        let spool = world.intake.spool
        let service = try AllocationService(spool: spool, configuration: world.configuration, logger: Self.quiet)
        try service.store.addUnits((1...4).map { StorageUnit(id: "S-\($0)", size: "S", site: "x") }, sizes: SizeClass.defaults)
        let payload = try #require(try world.intake.allocation.peek(id: ItemID(receipt.batch!)!))
        let commands = try #require(AllocatorDaemon.batchCommands(payload, service: service, logger: Self.quiet))
        #expect(commands.map(\.idempotencyKey) == Self.ids(receipt).compactMap { $0 }.map { "allocate:\($0)" })
        // A crash after a group with the first 3 committed: the retried item decides only the rest.
        let first = try service.decide(Array(commands.prefix(3)))
        _ = try service.drainOutbox()
        #expect(first.allSatisfy { if case .assigned = $0 { true } else { false } })
        let retried = try service.decide(commands)
        _ = try service.drainOutbox()
        #expect(retried.prefix(3).allSatisfy { $0 == .noChange })
        #expect(retried.dropFirst(3).filter { if case .assigned = $0 { true } else { false } }.count == 1)
        #expect(retried.dropFirst(4).allSatisfy { if case .rejected = $0 { true } else { false } })
        #expect(try service.decide(commands).allSatisfy { $0 == .noChange })
        #expect(try service.store.assignments().count == 4)
        let notifications = try spool.queue(.notifications).queuedPayloads()
        #expect(notifications.count == 7, "one notification per request")
        #expect(Set(notifications.compactMap { try? JSONDecoder().decode(CustomerNotification.self, from: Data($0)).request.id }).count == 7)
    }

    /// A request of a queued batch cancelled (by an operator or, restricted, by its owner) is
    /// never assigned, as a single request withdrawn by its cancel: one cancellation message.
    @Test(arguments: [false, true]) func aCancelWaitingInTheQueueWinsOverItsBatch(restricted: Bool) throws {
        let world = try Self.world()
        let front = restricted ? try world.restricted() : world.intake
        let receipt = try front.submitBatch(Self.bytes([Self.line("a"), Self.line("b")]), caller: Self.alice)
        let ids = Self.ids(receipt).compactMap { $0 }
        #expect(try front.cancel(ids[0], caller: Self.alice) == .requested)
        let spool = world.intake.spool
        let service = try AllocationService(spool: spool, configuration: world.configuration, logger: Self.quiet)
        try service.store.addUnits([StorageUnit(id: "S-1", size: "S", site: "x"), StorageUnit(id: "S-2", size: "S", site: "x")],
                                   sizes: SizeClass.defaults)
        let health = HealthReporter(records: try RecordDirectory(spool: spool, path: "state"), logger: Self.quiet)
        let queue = try spool.queue(.allocation)
        let batchItem = try #require(try queue.claim(id: ItemID(receipt.batch!)!, lease: .seconds(60)))
        // What a group decision gets for this item: the waiting cancel first, then the allocates.
        let commands = try #require(AllocatorDaemon.batchCommands(batchItem.payload, service: service, logger: Self.quiet))
        #expect(commands.map(\.idempotencyKey) == ["cancel:\(ids[0])", "allocate:\(ids[0])", "allocate:\(ids[1])"])
        #expect(try AllocatorDaemon.handle(batchItem, service: service, health: health, logger: Self.quiet) == .done)
        try queue.acknowledge(batchItem)
        #expect(try service.store.assignments().map(\.request) == [ids[1]], "the cancelled request is never assigned")
        // The cancel command, decided after: nothing more.
        let cancelItem = try #require(try queue.claimNext(lease: .seconds(60)))
        #expect(AllocationBatch.cancelledRequest(byItem: cancelItem.id) == ids[0])
        #expect(try service.decide(#require(AllocationCommand.commands(inPayload: cancelItem.payload)?.first)) == .noChange)
        let kinds = try spool.queue(.notifications).queuedPayloads().compactMap {
            try? JSONDecoder().decode(CustomerNotification.self, from: Data($0))
        }.map { "\($0.request.id) \($0.kind.rawValue)" }.sorted()
        #expect(kinds == ["\(ids[0]) cancellation", "\(ids[1]) confirmation"])
    }
}
