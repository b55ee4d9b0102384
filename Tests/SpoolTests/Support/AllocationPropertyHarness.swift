import Foundation
import GRDB
import Logging
import Rentals
@testable import Allocator
@testable import Spool

/// Runs an ``AllocationScenario`` against a real ``AllocationService`` on a real store in a
/// temporary spool, step by step, beside the ``AllocationReferenceModel``, and checks after
/// EVERY step, with SQL of its own over the store (never the allocator's queries):
/// 1. no unit holds overlapping assigned periods;
/// 2. saturation: no waitlisted request starting after today fits a free in-service unit;
/// 3. each request's status versions (the journal events in the outbox) strictly increase, and
///    the store's status document is the last of them, and no status changes without an event;
/// 4. a refused extension leaves the row's end, unit and price and the document's `to`, `unit`
///    and `price` byte-identical; an applied one keeps the unit;
/// 5. FCFS: no request promoted in the step is younger than a still-waiting one of its size that
///    could have taken its place (same site or any site, fits its unit without it);
/// 6. the model agrees on the decision, on the requests promoted, and on the whole state (every
///    request's state, unit and period; the waiting list);
/// 7. prices (currency EUR, rates per size and one per site, a new rate at each day advance): a
///    request's amount changes only by its own booking, promotion or change, and an assigned
///    row's amount and currency are its status document's price.
/// A store error (SQLite's overlap trigger among them) is a violation, never tolerated.
/// `run()` returns the first violation, naming the step, or nil.
final class AllocationPropertyHarness {
    static let features = AllocationReferenceModel.Features(waitlist: true, sites: true, changes: true, reinstate: true)
    static let origin = CalendarDay(iso: "2031-03-01")!.daysSinceEpoch

    let scenario: AllocationScenario
    let directory: String
    let service: AllocationService
    var model: AllocationReferenceModel
    var requests: [RentalRequest] = []
    var unitIDs: [String] = []
    var clock: Int64 = 0
    var outboxSeen: Int64 = 0
    var versions: [String: Int64] = [:]
    var step = -1
    /// The waiting list after the previous step (promoted rows are gone after the step).
    var lastWaitlist: [String: Waiting] = [:]
    /// What the scenario exercised: decisions by kind, promotions (for the coverage test).
    var exercised: [String: Int] = [:]
    /// The rental rows after the previous step.
    var lastRows: [String: Row] = [:]

    struct Row: Equatable {
        var state: String; var unit: String?; var start: Int; var end: Int
        var status: String; var currency: String?; var amount: Int64?
        var updatedAt: Int64 = 0
    }

    init(_ scenario: AllocationScenario) throws {
        self.scenario = scenario
        directory = try Self.scratchDirectory()
        let spool = try Spool(path: directory + "/spool", create: true)
        var configuration = SystemConfiguration()
        configuration.sizes = SizeClass.defaults
        configuration.currency = "EUR"
        service = try AllocationService(spool: spool, configuration: configuration, logger: Logger(label: "property", factory: { _ in SwiftLogNoOpLogHandler() }))
        model = AllocationReferenceModel(features: Self.features, today: Self.origin)
    }

    /// This process's scratch root: on tmpfs when there is one (no fsync cost: thousands of
    /// commits per second), else below the tests' scratch directory. Roots that finished runs
    /// left behind are removed first.
    static let scratchRoot: String = {
        let manager = FileManager.default
        guard manager.fileExists(atPath: "/dev/shm") else { return TemporaryDirectory("property").path }
        for name in (try? manager.contentsOfDirectory(atPath: "/dev/shm")) ?? [] where name.hasPrefix("spool-property-") {
            if let pid = Int32(name.dropFirst("spool-property-".count)), kill(pid, 0) != 0 { try? manager.removeItem(atPath: "/dev/shm/\(name)") }
        }
        return "/dev/shm/spool-property-\(getpid())"
    }()

    /// A fresh directory below ``scratchRoot``.
    static func scratchDirectory() throws -> String {
        try FileManager.default.createDirectory(atPath: scratchRoot, withIntermediateDirectories: true)
        var template = Array("\(scratchRoot)/run.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        return String(cString: made)
    }

    /// Removes the scratch directory (and the root once empty): the scenario replays from its seed.
    func removeScratch() {
        try? FileManager.default.removeItem(atPath: directory)
        rmdir(Self.scratchRoot)
    }

    var now: Int64 { Self.noon(ofDay: model.today) + clock }

    /// Noon, local time, of `day` in milliseconds: the allocator takes its today from the local
    /// date (``AllocationService/today(now:)``), so the scenario's days hold in any time zone.
    static func noon(ofDay day: Int) -> Int64 {
        var seconds = time_t(day * 86_400 + 43_200)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return (Int64(day) * 86_400 + 43_200 - Int64(parts.tm_gmtoff)) * 1000
    }

    func run() -> String? {
        do {
            for (index, code) in scenario.units.enumerated() {
                let unit = StorageUnit(id: "U\(index)", size: AllocationOpCode.sizes[code[0] % 3], site: AllocationOpCode.sites[code[1] % 2])
                try service.store.addUnits([unit], sizes: SizeClass.defaults)
                model.units.append(.init(id: unit.id, size: unit.size, site: unit.site, inService: true))
                unitIDs.append(unit.id)
            }
            try service.store.write { db in
                for (index, size) in AllocationOpCode.sizes.enumerated() {
                    try PriceBook.set(size: size, site: nil, monthlyMinor: Int64(4_900 + 2_500 * index), currency: "EUR", by: "test", now: now, db)
                }
                try PriceBook.set(size: "M", site: "north", monthlyMinor: 8_100, currency: "EUR", by: "test", now: now, db)
            }
            // The last line against double booking is in place (its firing is a violation, below).
            let triggers = try service.store.read { db in
                try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ('rental_no_overlap_insert', 'rental_no_overlap_update')")
            }
            if triggers != 2 { return "initial: the store lacks its overlap triggers" }
            lastRows = try rows()
            if let violation = try check(before: lastRows, after: lastRows, promotedReal: [], promotedModel: []) { return "initial: \(violation)" }
            for (index, op) in scenario.ops.enumerated() {
                step = index
                clock += 1
                if let violation = try apply(op) { return "step \(index) \(op): \(violation)" }
            }
            return nil
        } catch {
            return "step \(step) \(step >= 0 && step < scenario.ops.count ? scenario.ops[step].description : ""): store error \(error)"
                + ("\(error)".contains("overlapping assignment") ? " (SQLite's overlap trigger fired: the code chose an overlapping unit)" : "")
        }
    }

    /// Applies one operation to both sides and checks the invariants.
    private func apply(_ op: AllocationOpCode) throws -> String? {
        let before = lastRows
        var expected: AllocationReferenceModel.Decision?, real: AllocationReferenceModel.Decision?
        var promotedModel: [String] = []
        var changeCheck: (String, Int, Bool)?  // request, day asked, is extend
        switch op.decodedKind {
        case .submit:
            let start = model.today + op.startOffset
            let request = RentalRequest(
                id: String(format: "R%03d", requests.count), customer: "c\(requests.count % 3)", contact: "c@example.com", size: op.size,
                period: RentalPeriod(start: CalendarDay(daysSinceEpoch: start), end: CalendarDay(daysSinceEpoch: start + op.days))!,
                submittedBy: 1000, submittedByName: "customer", createdAt: now,
                site: Self.features.sites ? op.site : nil, waitlist: Self.features.waitlist && op.waitlist)
            requests.append(request)
            expected = model.submit(id: request.id, size: request.size, site: request.site, start: start, end: start + op.days, waitlist: request.waitlist)
            real = Self.simplify(try service.decide(.allocate(request), now: now))
        case .cancel:
            guard !requests.isEmpty else { return nil }
            let request = requests[op.a % requests.count]
            (expected, promotedModel) = model.cancel(request.id)
            real = Self.simplify(try service.decide(.cancel(request, requestedAt: now), now: now))
        case .extend, .end:
            guard Self.features.changes, !requests.isEmpty else { return nil }
            let request = requests[op.a % requests.count]
            guard let rental = model.rentals[request.id], rental.state == .assigned else { return nil }
            let isExtend = op.decodedKind == .extend
            let day = isExtend ? rental.end + op.changeDays : max(rental.end - op.changeDays, rental.start + 1, model.today)
            guard isExtend || day < rental.end else { return nil }
            if isExtend { expected = model.extend(request.id, to: day) } else { (expected, promotedModel) = model.end(request.id, on: day) }
            let change = RentalChange(id: String(format: "C%03d%022d", step, 0), kind: isExtend ? .extend : .end, request: request.id,
                                      day: CalendarDay(daysSinceEpoch: day), requestedAt: now, requestedBy: 1000, requestedByName: "customer")
            real = Self.simplify(try service.decide(isExtend ? .extend(change) : .end(change), now: now))
            changeCheck = (request.id, day, isExtend)
        case .addUnit:
            guard unitIDs.count < 6 else { return nil }
            let unit = StorageUnit(id: "U\(unitIDs.count)", size: AllocationOpCode.sizes[op.a % 3], site: AllocationOpCode.sites[op.b % 2])
            unitIDs.append(unit.id)
            promotedModel = model.addUnit(.init(id: unit.id, size: unit.size, site: unit.site, inService: true))
            try addUnit(unit)
        case .changeUnit:
            let id = unitIDs[op.a % unitIDs.count]
            let modelPromoted = model.changeUnit(id, size: op.unitSize, site: op.unitSite)
            let changed = try changeUnit(id, size: op.unitSize, site: op.unitSite)
            if changed != (modelPromoted != nil) { return "unit change applied \(changed), model says \(modelPromoted != nil)" }
            promotedModel = modelPromoted ?? []
        case .retire:
            let id = unitIDs[op.a % unitIDs.count]
            model.retire(id)
            try service.store.retireUnit(id)
        case .reinstate:
            guard Self.features.reinstate else { return nil }
            let id = unitIDs[op.a % unitIDs.count]
            promotedModel = model.reinstate(id)
            try reinstate(id)
        case .advance:
            model.advance(to: model.today + op.advanceDays)
            try dailyPass()
            // A new rate with the new day: rentals keep the price they were agreed at.
            try service.store.write { db in
                try PriceBook.set(size: AllocationOpCode.sizes[op.b % 3], site: op.c % 2 == 0 ? nil : "south", monthlyMinor: Int64(1_000 + 150 * op.d),
                                  currency: "EUR", by: "test", now: now, db)
            }
        }
        if let real { exercised["\(real)".prefix { $0 != "(" }.description, default: 0] += 1 }
        // The invariants of the store first (they name the more fundamental breach), the model's
        // agreement (6) after them.
        let disagreement = expected == real ? nil
            : "decision \(real.map { "\($0)" } ?? "none"), model expects \(expected.map { "\($0)" } ?? "none")"
        let after = try rows()
        // 7: prices. Only a request's own booking (submit, promotion) or change reprices it; the
        // row's amount is its status document's total.
        var mayReprice = Set(promotedRealIDs(before, after))
        if let id = changeCheck?.0 { mayReprice.insert(id) }
        if op.decodedKind == .submit, let id = requests.last?.id {
            mayReprice.insert(id)
            if after[id]?.amount != nil { exercised["priced", default: 0] += 1 }
        }
        for (id, row) in after {
            if let old = before[id], !mayReprice.contains(id), old.currency != row.currency || old.amount != row.amount {
                return "\(id): price changed \(old.amount.map(String.init) ?? "nil") -> \(row.amount.map(String.init) ?? "nil") without a booking or change of its own"
            }
            if row.status != before[id]?.status, row.state == "assigned", let status = RentalStatus(document: row.status),
               status.price?.totalMinor != row.amount || status.price?.currency != row.currency {
                return "\(id): row amount \(row.amount.map(String.init) ?? "nil") \(row.currency ?? "-"), status price \(status.price.map { "\($0.totalMinor) \($0.currency)" } ?? "nil")"
            }
        }
        if let (id, day, isExtend) = changeCheck, let violation = Self.checkChange(id, day: day, isExtend: isExtend, before[id]!, after[id]!, real!) {
            return violation
        }
        let promotedReal = promotedRealIDs(before, after)
        exercised["promoted", default: 0] += promotedReal.count
        exercised["expired", default: 0] += after.keys.filter { before[$0]?.state == "waitlisted" && after[$0]?.state == "expired" }.count
        return try check(before: before, after: after, promotedReal: promotedReal, promotedModel: promotedModel.sorted()) ?? disagreement
    }

    func promotedRealIDs(_ before: [String: Row], _ after: [String: Row]) -> [String] {
        after.keys.filter { before[$0]?.state == "waitlisted" && after[$0]?.state == "assigned" }.sorted()
    }

    static func simplify(_ decision: AllocationService.Decision) -> AllocationReferenceModel.Decision {
        switch decision {
        case .assigned(let unit): .assigned(unit)
        case .rejected: .rejected
        case .waitlisted: .waitlisted
        case .cancelled: .cancelled
        case .noChange: .noChange
        case .changed: .changed
        case .refused: .refused
        case .expired: .noChange
        }
    }

    /// Invariant 4.
    static func checkChange(_ id: String, day: Int, isExtend: Bool, _ before: Row, _ after: Row, _ decision: AllocationReferenceModel.Decision) -> String? {
        let old = RentalStatus(document: before.status), new = RentalStatus(document: after.status)
        guard let old, let new else { return "\(id): status document does not decode" }
        switch decision {
        case .refused, .noChange:
            if before.unit != after.unit || before.end != after.end || before.currency != after.currency || before.amount != after.amount {
                return "\(id): refused change altered the row \(before) -> \(after)"
            }
            if old.to != new.to || old.unit != new.unit || old.price.map(canonicalJSON) != new.price.map(canonicalJSON) {
                return "\(id): refused change altered to/unit/price in the status document"
            }
        case .changed:
            if before.unit != after.unit || old.unit != new.unit { return "\(id): applied change moved the unit \(before.unit ?? "-") -> \(after.unit ?? "-")" }
            if after.end != day || new.to.daysSinceEpoch != day { return "\(id): applied change ends on \(after.end)/\(new.to), asked \(day)" }
        default:
            return "\(id): a change decided \(decision)"
        }
        return nil
    }
}

extension AllocationPropertyHarness {
    /// Every rental row, by request id. Reads the (large) status documents only of the rows
    /// whose state, unit, period or update time differ from ``lastRows`` (a step changes a few).
    func rows() throws -> [String: Row] {
        try service.store.read { db in
            var rows: [String: Row] = [:]
            var stale: [String] = []
            for row in try GRDB.Row.fetchAll(db, sql: "SELECT request_id, state, unit_id, start_day, end_day, updated_at, currency, amount_minor FROM rental") {
                let id: String = row["request_id"]
                let fresh = Row(state: row["state"], unit: row["unit_id"], start: row["start_day"], end: row["end_day"],
                                status: "", currency: row["currency"], amount: row["amount_minor"], updatedAt: row["updated_at"])
                if var known = lastRows[id], known.updatedAt == fresh.updatedAt {
                    known.status = ""
                    if known == fresh {
                        rows[id] = lastRows[id]
                        continue
                    }
                }
                rows[id] = fresh
                stale.append(id)
            }
            for id in stale {
                rows[id]!.status = try String.fetchOne(db, sql: "SELECT status FROM rental WHERE request_id = ?", arguments: [id]) ?? ""
            }
            return rows
        }
    }

    /// Invariants 1, 2, 3, 5 and 6 after a step.
    func check(before: [String: Row], after: [String: Row], promotedReal: [String], promotedModel: [String]) throws -> String? {
        lastRows = after
        let today = model.today
        let (overlap, unsaturated, events, waitlistMismatch) = try service.store.read { db in
            let overlap = try String.fetchOne(db, sql: """
                SELECT a.unit_id || ': ' || a.request_id || ' [' || a.start_day || ',' || a.end_day || ') and ' || b.request_id || ' [' || b.start_day || ',' || b.end_day || ')'
                FROM rental a JOIN rental b ON a.unit_id = b.unit_id AND a.request_id < b.request_id
                WHERE a.state = 'assigned' AND b.state = 'assigned' AND a.start_day < b.end_day AND b.start_day < a.end_day LIMIT 1
                """)
            let unsaturated = try String.fetchOne(db, sql: """
                SELECT w.request_id || ' fits free unit ' || u.id FROM waitlist w JOIN unit u
                  ON u.size = w.size AND u.in_service = 1 AND (w.site IS NULL OR u.site = w.site)
                WHERE w.start_day > ? AND NOT EXISTS (SELECT 1 FROM rental r WHERE r.state = 'assigned' AND r.unit_id = u.id
                                                      AND r.start_day < w.end_day AND r.end_day > w.start_day)
                LIMIT 1
                """, arguments: [today])
            let events = try GRDB.Row.fetchAll(db, sql: "SELECT seq, payload FROM outbox WHERE kind = 'journal' AND seq > ? ORDER BY seq",
                                               arguments: [outboxSeen])
            let waitlistMismatch = try String.fetchOne(db, sql: """
                SELECT request_id FROM (SELECT request_id FROM waitlist EXCEPT SELECT request_id FROM rental WHERE state = 'waitlisted'
                                        UNION ALL SELECT request_id FROM rental WHERE state = 'waitlisted' EXCEPT SELECT request_id FROM waitlist) LIMIT 1
                """)
            return (overlap, unsaturated, events, waitlistMismatch)
        }
        if let overlap { return "overlapping assignments on unit \(overlap)" }
        if let unsaturated { return "saturation broken: waitlisted \(unsaturated)" }
        if let waitlistMismatch { return "waitlist table and waitlisted rentals disagree on \(waitlistMismatch)" }
        // 3: versions strictly increase per request, and the stored document is the last one.
        var touched = Set<String>()
        for row in events {
            outboxSeen = row["seq"]
            guard let event = IndexEvent.decode(Array(row["payload"] as Data)) else { return "an outbox journal record does not decode" }
            if let last = versions[event.entity], event.version <= last {
                return "\(event.entity): version \(event.version) (\(event.state)) after \(last)"
            }
            versions[event.entity] = event.version
            touched.insert(event.entity)
        }
        for id in touched {
            guard let stored = after[id].flatMap({ RentalStatus(document: $0.status) }) else { continue }
            if stored.version != versions[id] { return "\(id): stored status version \(stored.version), last event \(versions[id]!)" }
        }
        for (id, row) in after where before[id] != nil && before[id]!.status != row.status && !touched.contains(id) {
            return "\(id): status changed (\(before[id]!.state) -> \(row.state)) without an event"
        }
        // 5: FCFS at the moment of each promotion.
        let waitingBefore = lastWaitlist
        lastWaitlist = try waitlist()
        for promoted in promotedReal {
            guard let mine = waitingBefore[promoted], let row = after[promoted], let unit = row.unit else { continue }
            let unitSite = try service.store.read { db in try String.fetchOne(db, sql: "SELECT site FROM unit WHERE id = ?", arguments: [unit]) }
            for (other, seq) in waitingBefore where seq.seq < mine.seq && after[other]?.state == "waitlisted" && seq.size == mine.size
                && (seq.site == nil || seq.site == unitSite) && seq.start > today
                && !after.contains(where: { $0.key != promoted && $0.value.state == "assigned" && $0.value.unit == unit
                                             && $0.value.start < seq.end && seq.start < $0.value.end }) {
                return "FCFS: \(promoted) (seq \(mine.seq)) promoted to \(unit) while older \(other) (seq \(seq.seq)) fits it and still waits"
            }
        }
        // 6: the promotions and the whole state agree with the model.
        if promotedReal != promotedModel { return "promoted \(promotedReal), model promotes \(promotedModel)" }
        for (id, rental) in model.rentals {
            guard let row = after[id] else { return "\(id): no row, model has \(rental.state)" }
            if row.state != rental.state.rawValue || row.unit != rental.unit || row.start != rental.start || row.end != rental.end {
                return "\(id): store \(row.state) \(row.unit ?? "-") [\(row.start),\(row.end)), model \(rental.state) \(rental.unit ?? "-") [\(rental.start),\(rental.end))"
            }
        }
        if after.count != model.rentals.count { return "store has \(after.count) rentals, model \(model.rentals.count)" }
        return nil
    }

    struct Waiting { var seq: Int64; var size: String; var site: String?; var start: Int; var end: Int }

    func waitlist() throws -> [String: Waiting] {
        try service.store.read { db in
            var waiting: [String: Waiting] = [:]
            for row in try GRDB.Row.fetchAll(db, sql: "SELECT request_id, seq, size, site, start_day, end_day FROM waitlist") {
                waiting[row["request_id"]] = Waiting(seq: row["seq"], size: row["size"], site: row["site"], start: row["start_day"], end: row["end_day"])
            }
            return waiting
        }
    }
}

// Inventory changes as `spoolctl units` makes them: with the waiting list's promotion
// (``WaitlistPromotion``) in the change's transaction, deciding with the scenario's today.
extension AllocationPropertyHarness {
    func promotion(_ ids: [String]) -> WaitlistPromotion {
        WaitlistPromotion(units: ids, configuration: service.configuration, today: CalendarDay(daysSinceEpoch: model.today))
    }

    func addUnit(_ unit: StorageUnit) throws {
        try service.store.addUnits([unit], sizes: SizeClass.defaults, afterChange: promotion([unit.id]).hook)
    }

    /// False when the store refuses (the unit holds a rental).
    func changeUnit(_ id: String, size: String, site: String) throws -> Bool {
        do {
            try service.store.changeUnit(id, size: size, site: site, sizes: SizeClass.defaults, afterChange: promotion([id]).hook)
            return true
        } catch InventoryError.unitHeld {
            return false
        }
    }

    func reinstate(_ id: String) throws {
        try service.store.reinstateUnit(id, afterChange: promotion([id]).hook)
    }

    func dailyPass() throws {
        try service.dailyPass(today: CalendarDay(daysSinceEpoch: model.today), now: now)
    }
}
