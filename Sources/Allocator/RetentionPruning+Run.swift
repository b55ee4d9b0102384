import Foundation
import GRDB
import Logging
import Rentals
import Spool

extension RetentionPruning {
    /// ``prune(spool:configuration:now:dryRun:logger:)`` with the store's transactions made of
    /// `chunk` deletions and `beforeStep` called (with a label) before every durable removal:
    /// for the crash tests, which stop the run there (throwing, or SIGKILL in a driver process).
    public static func prune(spool: Spool, configuration: SystemConfiguration, now: Timestamp, dryRun: Bool,
                             logger: Logger, chunk: Int, beforeStep: (String) throws -> Void) throws -> RetentionPruningReport {
        guard var pruner = try Pruner(spool: spool, configuration: configuration, now: now, dryRun: dryRun, logger: logger) else {
            return RetentionPruningReport(counts: Pruner.zeroCounts)
        }
        pruner.chunk = max(1, chunk)
        return try pruner.run(beforeStep: beforeStep)
    }
}

/// One run of ``RetentionPruning`` (see there for the steps and docs/reliability.md for why
/// each removal is safe).
struct Pruner {
    let policy: RetentionPolicy
    let now: Int64
    let horizon: Int64
    let dryRun: Bool
    let logger: Logger
    let store: AllocatorStore
    let journal: Journal
    let index: StatusIndex
    let delivered: RecordDirectory?
    let keys: RecordDirectory?
    let queues: [Queue]
    var chunk = 500

    /// The kinds of notification, as event ids end (`<request>-<kind>`), longest first.
    static let kinds = CustomerNotification.Kind.allCases.map(\.rawValue).sorted { $0.count > $1.count }

    /// The request an event id (a delivery record's name, a notification's item id) names:
    /// `<request>-<kind>` or `<request>-<kind>-r<revision>`; nil for another name.
    static func request(ofEventID name: String) -> String? {
        var base = Substring(name)
        if let dash = base.lastIndex(of: "-"), base[base.index(after: dash)...].first == "r",
           case let digits = base[base.index(dash, offsetBy: 2)...], !digits.isEmpty, digits.allSatisfy({ ("0"..."9").contains($0) }) {
            base = base[..<dash]
        }
        guard let kind = kinds.first(where: { base.hasSuffix("-\($0)") }), base.count > kind.count + 1 else { return nil }
        return String(base.dropLast(kind.count + 1))
    }

    /// The counts of a run that found nothing.
    static let zeroCounts = ["processed_keys_pruned": 0, "rentals_pruned": 0, "delivered_records_pruned": 0,
                             "intake_keys_pruned": 0, "kept_for_queued_items": 0]

    /// A run over `spool`; nil when the spool has no allocator store yet (nothing to prune, and
    /// nothing is created: a store or directory made by this process would have its owner).
    init?(spool: Spool, configuration: SystemConfiguration, now: Timestamp, dryRun: Bool, logger: Logger) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: "\(spool.path)/allocator/state.sqlite", isDirectory: &isDirectory),
              !isDirectory.boolValue else { return nil }
        policy = RetentionPolicy(configuration)
        self.now = now.milliseconds
        horizon = RetentionPruning.redeliveryHorizonMilliseconds(configuration)
        self.dryRun = dryRun
        self.logger = logger
        store = try AllocatorStore(spool: spool, readOnly: dryRun)  // a dry run migrates nothing either
        journal = try Journal(spool: spool)
        index = try StatusIndex(spool: spool, journal: journal)
        delivered = try RecordDirectory.existing(spool: spool, path: "notifier/delivered")
        keys = try RecordDirectory.existing(spool: spool, path: "intake/keys")
        let retry = RetryPolicy(maxAttempts: configuration.maxAttempts)
        queues = [try spool.queue(.allocation, retry: retry), try spool.queue(.notifications, retry: retry)]
    }

    func run(beforeStep: (String) throws -> Void = { _ in }) throws -> RetentionPruningReport {
        var counts = Self.zeroCounts
        // 1. Keys that a rental row makes redundant.
        counts["processed_keys_pruned", default: 0] += try pruneRedundantKeys(beforeStep)

        // Candidates, then what mentions them (outbox first, then the queues: the order in
        // which the allocator publishes), then the index's view of them.
        _ = try index.catchUp(from: journal)
        let rentals = try finishedRentals()
        let tombstones = try oldTombstones()
        let records = try oldDeliveryRecords()
        let intake = try idempotencyKeys()
        var candidates = Set(rentals.map(\.id)).union(tombstones.map(\.request)).union(records.map(\.request))
        candidates.formUnion(intake.map(\.request))
        let mentioned = try ReferenceScan(candidates: candidates).mentions(outbox: store, queues: queues)
        let unfinished = try candidates.filter { try indexShowsUnfinished($0) }
        let keep = mentioned.union(unfinished)
        counts["kept_for_queued_items"] = mentioned.count

        let prunedRentals = rentals.filter { !keep.contains($0.id) }
        let prunedIDs = Set(prunedRentals.map(\.id))
        let prunedTombstones = tombstones.filter { !keep.contains($0.request) }
        let tombstoned = Set(prunedTombstones.map(\.request))
        // Records of a request whose tombstone goes now or went before (no rental, no young key).
        let prunedRecords = records.filter { !keep.contains($0.request) && ($0.orphan || tombstoned.contains($0.request)) }
        let prunedKeys = intake.filter { key in
            !keep.contains(key.request) && (prunedIDs.contains(key.request) || key.orphan)
        }
        if dryRun {
            counts["processed_keys_pruned", default: 0] += prunedTombstones.count
            counts["rentals_pruned"] = prunedRentals.count
            counts["delivered_records_pruned"] = prunedRecords.count
            counts["intake_keys_pruned"] = prunedKeys.count
            return RetentionPruningReport(counts: counts)
        }
        // 4 (before 2): the idempotency keys of the requests whose rows go.
        for part in prunedKeys.chunked(chunk) {
            try beforeStep("intake-keys")
            try keys?.remove(part.map(\.name))
            counts["intake_keys_pruned", default: 0] += part.count
        }
        // 2: rows out, tombstones in.
        for part in prunedRentals.chunked(chunk) {
            try beforeStep("rentals")
            counts["rentals_pruned", default: 0] += try store.write { db in
                var removed = 0
                let delete = try db.cachedStatement(sql: "DELETE FROM rental WHERE request_id = ? AND updated_at = ? AND state <> 'assigned'")
                let tombstone = try db.cachedStatement(sql: "INSERT OR REPLACE INTO processed (key, at) VALUES (?, ?)")
                // `extend:<id>:…` and `end:<id>:…` as key ranges (';' follows ':'): index seeks.
                let changeKeys = try db.cachedStatement(sql: """
                    DELETE FROM processed WHERE (key > ? AND key < ?) OR (key > ? AND key < ?)
                    """)
                for rental in part {
                    try delete.execute(arguments: [rental.id, rental.updatedAt])
                    guard db.changesCount == 1 else { continue }
                    removed += 1
                    for key in ["allocate:\(rental.id)", "cancel:\(rental.id)"] { try tombstone.execute(arguments: [key, now]) }
                    // A change never creates a row, so its key needs no tombstone: it goes with the row.
                    try changeKeys.execute(arguments: ["extend:\(rental.id):", "extend:\(rental.id);", "end:\(rental.id):", "end:\(rental.id);"])
                }
                return removed
            }
        }
        // 3: delivery records, then the tombstones that outlived the horizon.
        for part in prunedRecords.chunked(chunk) {
            try beforeStep("delivery-records")
            try delivered?.remove(part.map(\.name))
            counts["delivered_records_pruned", default: 0] += part.count
        }
        for part in prunedTombstones.chunked(chunk) {
            try beforeStep("tombstones")
            counts["processed_keys_pruned", default: 0] += try store.write { db in
                var removed = 0
                let delete = try db.cachedStatement(sql: """
                    DELETE FROM processed WHERE key = ? AND at = ? AND NOT EXISTS (SELECT 1 FROM rental WHERE request_id = ?)
                    """)
                for tombstone in part {
                    try delete.execute(arguments: [tombstone.key, tombstone.at, tombstone.request])
                    removed += db.changesCount
                }
                return removed
            }
        }
        if counts.values.contains(where: { $0 > 0 }) {
            logger.info("pruned the allocator's and notifier's records", metadata: counts.mapValues { "\($0)" })
        }
        return RetentionPruningReport(counts: counts)
    }

    // MARK: Step 1

    /// Deletes, in chunks, the processed keys whose request has a rental row; returns how many
    /// (in a dry run, counts them).
    func pruneRedundantKeys(_ beforeStep: (String) throws -> Void) throws -> Int {
        let redundant = """
            SELECT key FROM processed WHERE (substr(key, 1, 9) = 'allocate:' OR substr(key, 1, 7) = 'cancel:')
              AND EXISTS (SELECT 1 FROM rental WHERE request_id = substr(processed.key, instr(processed.key, ':') + 1))
            """
        if dryRun { return try store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM (\(redundant))") ?? 0 } }
        var total = 0
        while true {
            try beforeStep("redundant-keys")
            let removed = try store.write { db in
                try db.execute(sql: "DELETE FROM processed WHERE key IN (\(redundant) LIMIT ?)", arguments: [chunk])
                return db.changesCount
            }
            total += removed
            if removed < chunk { return total }
        }
    }

    // MARK: Candidates

    struct Rental { var id: String; var updatedAt: Int64 }
    struct Tombstone { var key: String; var at: Int64; var request: String }
    struct Record { var name: String; var request: String; var orphan: Bool }
    struct Key { var name: String; var request: String; var orphan: Bool }

    /// Finished rentals past retention (none without a retention setting): the store's rows no
    /// longer assigned and changed before the cutoff (index `rental_finished`), whose status with
    /// its delivery applied the policy may drop.
    func finishedRentals() throws -> [Rental] {
        guard let days = policy.days else { return [] }
        let cutoff = now - Int64(days) * 86_400_000
        let rows = try store.read { db in
            try Row.fetchAll(db, sql: "SELECT request_id, status, updated_at FROM rental WHERE state <> 'assigned' AND updated_at < ? ORDER BY updated_at",
                             arguments: [cutoff])
        }
        var rentals: [Rental] = []
        for row in rows {
            let id: String = try row.decode(String.self, forColumn: "request_id")
            guard let status = RentalStatus(document: try row.decode(String.self, forColumn: "status")) else {
                logger.warning("a rental's status does not decode; kept", metadata: ["request": "\(id)"])
                continue
            }
            let after = delivered.map { AllocationService.afterDelivery(of: status, $0) } ?? status
            guard policy.mayDrop(after, now: Timestamp(milliseconds: now)) else { continue }
            rentals.append(Rental(id: id, updatedAt: try row.decode(Int64.self, forColumn: "updated_at")))
        }
        return rentals
    }

    /// Processed `allocate:`/`cancel:` keys without a rental row older than the horizon:
    /// tombstones of pruned rentals (such a key without a row is nothing else: every allocate or
    /// cancel writes a row). A change's key (`extend:<id>:<change>`, `end:<id>:<change>`) is
    /// never a tombstone: a change writes no row, and its key goes with its rental's row.
    func oldTombstones() throws -> [Tombstone] {
        guard policy.days != nil else { return [] }
        return try store.read { db in
            try Row.fetchAll(db, sql: """
                SELECT key, at FROM processed WHERE at < ?
                  AND (substr(key, 1, 9) = 'allocate:' OR substr(key, 1, 7) = 'cancel:')
                  AND NOT EXISTS (SELECT 1 FROM rental WHERE request_id = substr(processed.key, instr(processed.key, ':') + 1))
                """, arguments: [now - horizon]).compactMap { row in
                let key: String = try row.decode(String.self, forColumn: "key")
                guard let colon = key.firstIndex(of: ":") else { return nil }
                return Tombstone(key: key, at: try row.decode(Int64.self, forColumn: "at"), request: String(key[key.index(after: colon)...]))
            }
        }
    }

    /// Delivery records older than the horizon whose request has no rental row and no processed
    /// key younger than the horizon. `orphan` when it has no key at all.
    func oldDeliveryRecords() throws -> [Record] {
        guard policy.days != nil, let delivered else { return [] }
        var records: [(name: String, request: String)] = []
        for name in try delivered.names() {
            guard let request = Self.request(ofEventID: name) else { continue }
            // A record that cannot be read (a symlink, too large, a failed read) is kept.
            guard let bytes = try? delivered.read(name, limit: 4096),
                  let at = Timestamp(rfc3339: String(decoding: bytes, as: UTF8.self)), at.milliseconds < now - horizon else { continue }
            records.append((name, request))
        }
        return try store.read { db in
            let rental = try db.cachedStatement(sql: "SELECT 1 FROM rental WHERE request_id = ?")
            let keys = try db.cachedStatement(sql: "SELECT MAX(at) FROM processed WHERE key IN (?, ?)")
            return try records.compactMap { record in
                guard try Bool.fetchOne(rental, arguments: [record.request]) != true else { return nil }
                let newest = try Int64.fetchOne(keys, arguments: ["allocate:\(record.request)", "cancel:\(record.request)"])
                if let newest, newest >= now - horizon { return nil }
                return Record(name: record.name, request: record.request, orphan: newest == nil)
            }
        }
    }

    /// The idempotency keys with the request each names; `orphan` for a request that is nowhere
    /// (no rental, no processed key, not in the index) and was created before the horizon. A
    /// damaged record is kept (intake reports it when the key is used).
    func idempotencyKeys() throws -> [Key] {
        guard policy.days != nil, let keys else { return [] }
        var named: [(name: String, request: RentalRequest)] = []
        for name in try keys.names() {
            guard let bytes = try? keys.read(name, limit: 64 * 1024), let request = Self.request(inKeyRecord: bytes) else { continue }
            named.append((name, request))
        }
        let known = try store.read { db in
            let rental = try db.cachedStatement(sql: "SELECT 1 FROM rental WHERE request_id = ?")
            let keys = try db.cachedStatement(sql: "SELECT 1 FROM processed WHERE key IN (?, ?)")
            return try named.map { entry in
                let id = entry.request.id
                return try Bool.fetchOne(rental, arguments: [id]) == true
                    || (try Bool.fetchOne(keys, arguments: ["allocate:\(id)", "cancel:\(id)"]) == true)
            }
        }
        return try named.indices.map { index in
            let request = named[index].request
            guard !known[index], request.createdAt < now - horizon else { return Key(name: named[index].name, request: request.id, orphan: false) }
            let orphan = try self.index.entity(request.id) == nil
            return Key(name: named[index].name, request: request.id, orphan: orphan)
        }
    }

    /// The request in an idempotency key's record (`IntakeService.keyRecord`: canonical JSON,
    /// then `crc32 <8 hex digits>`), nil when it does not decode or its checksum fails.
    static func request(inKeyRecord bytes: [UInt8]) -> RentalRequest? {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
            return try? JSONDecoder().decode(RentalRequest.self, from: Data(bytes))
        }
        let json = bytes[..<newline]
        let digits = String(CRC32.checksum(json), radix: 16)
        let expected = "crc32 " + String(repeating: "0", count: 8 - digits.count) + digits + "\n"
        guard Array(bytes[(newline + 1)...]) == Array(expected.utf8) else { return nil }
        return try? JSONDecoder().decode(RentalRequest.self, from: Data(json))
    }

    /// True when the index holds request `id` in a status the policy may not drop (a status
    /// that does not decode counts as unfinished).
    func indexShowsUnfinished(_ id: String) throws -> Bool {
        guard let row = try index.entity(id) else { return false }
        guard let status = RentalStatus(document: row.document) else { return true }
        return !policy.mayDrop(status, now: Timestamp(milliseconds: now))
    }
}

extension Array {
    /// The array in consecutive slices of at most `size` elements.
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
