import Foundation
import GRDB
import Rentals
import Spool

/// The waiting list (`submit --waitlist`): requests no unit was free for wait in the store's
/// `waitlist` table, first come first served per size and site, until a unit that fits them is
/// freed (a cancel, an early end, a unit added, changed or reinstated) or their start date
/// comes (they expire).
///
/// Every function works inside the caller's write transaction: the waitlist row, the rental row
/// and the outbox messages (status event, customer notification) change together, so a crash
/// leaves the list either before or after the decision, and the decision is published from
/// the outbox exactly as the allocator's other decisions are (idempotent publication).
///
/// **Invariants.** A waitlist row lives exactly as long as its rental's state is `waitlisted`.
/// Saturation: after every committed transaction no waitlisted request whose start is after
/// today fits a free unit (every release calls ``promote(size:site:today:now:configuration:_:)``
/// or ``promote(freed:today:now:configuration:_:)`` in its own transaction, and a request is
/// waitlisted only when no unit fits it). So only the units a release frees can take a waiting
/// request, and a new submit never overtakes a fitting waiting one.
///
/// **Order.** The oldest *fitting* request wins (`seq`, never reused): an older request that
/// does not fit the freed period does not block younger ones that do (no head-of-line
/// blocking). A request with a site waits only for units at that site; one without (`site`
/// NULL) takes a unit at any site.
///
/// **Cost.** A promotion reads the waiting rows of the size (and compatible site) in order, one
/// index range (`waitlist_fcfs`), and for each row with a start after today asks whether a freed
/// unit is free for its period (index seeks in `rental_span`, ``promote(freed:today:now:configuration:_:)``)
/// or, without freed units named, runs best fit over the size's units (``promote(size:site:today:now:configuration:_:)``:
/// two seeks per in-service unit of the size and site). So a release costs O(W) seeks with W the
/// requests waiting for that size (plus a best fit and the writes per promoted request), and
/// O(W × U) without freed units named. Measured in a debug build: a cancel with 3,000 waiting
/// that promotes 50 takes about 0.16 s (docs/performance.md).
enum Waitlist {
    /// A waiting request as its waitlist row holds it.
    struct Entry {
        var seq: Int64
        var request: String
        var site: String?
        var period: RentalPeriod
    }

    /// Waitlists `request`: writes its rental row (state `waitlisted`, no unit) and its waitlist
    /// row, and turns `status` into the waitlisted status (state, `waitlist` place with its
    /// position, `site` asked for) written in that row. The caller puts the outbox messages.
    static func add(_ request: RentalRequest, status: inout RentalStatus, now: Int64, _ db: Database) throws {
        let ahead = try Int.fetchOne(db, sql: """
            SELECT COUNT(*) FROM waitlist WHERE size = ? AND (? IS NULL OR site IS NULL OR site = ?)
            """, arguments: [request.size, request.site, request.site]) ?? 0
        status.state = .waitlisted
        status.unit = nil
        status.site = request.site
        status.waitlist = WaitlistPlace(since: Timestamp(milliseconds: now), position: ahead + 1)
        try db.execute(sql: """
            INSERT INTO rental (request_id, state, unit_id, start_day, end_day, status, updated_at) VALUES (?, 'waitlisted', NULL, ?, ?, ?, ?)
            """, arguments: [request.id, request.period.start.daysSinceEpoch, request.period.end.daysSinceEpoch, status.jsonText(), now])
        try db.execute(sql: """
            INSERT INTO waitlist (request_id, size, site, start_day, end_day, since) VALUES (?, ?, ?, ?, ?, ?)
            """, arguments: [request.id, request.size, request.site, request.period.start.daysSinceEpoch,
                             request.period.end.daysSinceEpoch, now])
    }

    /// Fills freed capacity of `size` at `site` (nil: every site) with waiting requests, oldest
    /// fitting first, in the caller's transaction: for each, its rental row becomes `assigned`
    /// (best fit among the units of its site, or of `site` for a request without one), its
    /// waitlist row goes, its status is the next revision at step 2 with the price in force now,
    /// and the outbox gets its status event and a confirmation (event id
    /// `<id>-confirmation-r<revision>`, carrying the status). Returns the promoted request ids.
    static func promote(size: String, site: String?, today: CalendarDay, now: Int64,
                        configuration: SystemConfiguration, _ db: Database) throws -> [String] {
        try promote(size: size, site: site, freed: nil, today: today, now: now, configuration: configuration, db)
    }

    /// ``promote(size:site:today:now:configuration:_:)`` after `units` gained capacity (a unit
    /// released, added, changed or reinstated): by the saturation invariant only they can take a
    /// waiting request, so a row is considered only when one of them (in service, of its size
    /// and site) is free for its period, which costs two index seeks per row and unit instead of
    /// a best fit over the whole size. Units out of service are skipped.
    static func promote(freed units: [StorageUnit], today: CalendarDay, now: Int64,
                        configuration: SystemConfiguration, _ db: Database) throws -> [String] {
        var promoted: [String] = []
        let inService = units.filter(\.inService)
        for size in Set(inService.map(\.size)).sorted() {
            let sites = Set(inService.filter { $0.size == size }.map(\.site))
            promoted += try promote(size: size, site: sites.count == 1 ? sites.first : nil,
                                    freed: inService.filter { $0.size == size }, today: today, now: now,
                                    configuration: configuration, db)
        }
        return promoted
    }

    private static func promote(size: String, site: String?, freed: [StorageUnit]?, today: CalendarDay, now: Int64,
                                configuration: SystemConfiguration, _ db: Database) throws -> [String] {
        var promoted: [String] = []
        for entry in try waiting(size: size, site: site, after: today, db) {
            if let freed {
                // Saturation: only a freed unit can take it. Cheap test first.
                let candidates = freed.filter { entry.site == nil || entry.site == $0.site }
                guard try candidates.contains(where: { try isFree($0.id, entry.period, db) }) else { continue }
            }
            guard let unit = try bestUnit(size: size, period: entry.period, site: entry.site ?? site, db) else { continue }
            // Priced at promotion, at the rate in force now (OQ-10); a period that cannot be
            // priced (a rate written around spoolctl's limit) does not fit: it stays waiting.
            let quote = try PriceBook.quotation(size: size, site: unit.site, period: entry.period, currency: configuration.currency, db)
            if case .unpriceable = quote { continue }
            if try assign(entry, unit: unit, price: quote.price, now: now, db) { promoted.append(entry.request) }
        }
        return promoted
    }

    /// The waiting rows of `size` whose start is after `today`, compatible with `site` (nil:
    /// every row of the size), oldest first.
    static func waiting(size: String, site: String?, after today: CalendarDay, _ db: Database) throws -> [Entry] {
        try Row.fetchAll(db.cachedStatement(sql: """
            SELECT seq, request_id, site, start_day, end_day FROM waitlist
            WHERE size = :size AND start_day > :today AND (:site IS NULL OR site IS NULL OR site = :site)
            ORDER BY seq
            """), arguments: ["size": size, "today": today.daysSinceEpoch, "site": site]).map { row in
            Entry(seq: try row.decode(Int64.self, forColumn: "seq"), request: try row.decode(String.self, forColumn: "request_id"),
                  site: try row.decode(String?.self, forColumn: "site"), period: try AllocatorStore.period(row))
        }
    }

    /// Whether unit `id` holds no assigned rental overlapping `period`, by one index seek: under
    /// the store's invariant (assigned rentals of a unit never overlap) the holding with the
    /// latest start before `period.end` is the only one that can. A pre-filter only: the unit
    /// promoted onto is chosen by ``Availability/bestUnit(size:period:site:_:)``, which verifies.
    static func isFree(_ id: String, _ period: RentalPeriod, _ db: Database) throws -> Bool {
        let end = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT end_day FROM rental WHERE state = 'assigned' AND unit_id = ? AND start_day < ? ORDER BY start_day DESC LIMIT 1
            """), arguments: [id, period.end.daysSinceEpoch])
        guard let end else { return true }
        return try AllocatorStore.day(end, "end_day") <= period.start
    }

    /// Best fit among the in-service units of `size` at `site` (nil: any site).
    static func bestUnit(size: String, period: RentalPeriod, site: String?, _ db: Database) throws -> StorageUnit? {
        try Availability.bestUnit(size: size, period: period, site: site, db)
    }

    /// Promotes `entry` onto `unit` (free for its period: the caller checked) at `price`. False
    /// when its rental reached the revision cap (it stays waiting).
    private static func assign(_ entry: Entry, unit: StorageUnit, price: RentalPrice?, now: Int64, _ db: Database) throws -> Bool {
        var status = try waitingStatus(entry.request, db)
        guard status.revision < RentalStatus.maximumRevision else { return false }
        status.state = .assigned
        status.unit = unit.id
        status.site = unit.site
        status.reason = nil
        status.alternative = nil
        status.waitlist = nil
        status.notifiedAt = nil
        status.attempts = 0
        status.lastError = nil
        status.revision += 1
        status.version = RentalStatus.version(revision: status.revision, step: 2)
        status.updatedAt = Timestamp(milliseconds: now)
        status.price = price
        try db.execute(sql: "UPDATE rental SET state = 'assigned', unit_id = ?, status = ?, updated_at = ? WHERE request_id = ?",
                       arguments: [unit.id, status.jsonText(), now, entry.request])
        try PriceBook.record(price, request: entry.request, db)
        try remove(entry.request, db)
        var notification = CustomerNotification(kind: .confirmation, request: request(of: status, site: entry.site),
                                                unit: unit.id, site: unit.site, decidedAt: now)
        notification.eventId = CustomerNotification.eventID(request: status.id, kind: .confirmation, revision: status.revision)
        notification.status = status
        try enqueue(status, notification, db)
        return true
    }

    /// Expires every waiting request whose start is `today` or earlier (the daily pass): state
    /// `expired` at step 4 of its revision, waitlist row removed, an `expiry` notification
    /// carrying the status. Returns how many.
    static func expire(today: CalendarDay, now: Int64, _ db: Database) throws -> Int {
        let rows = try Row.fetchAll(db, sql: "SELECT request_id, site FROM waitlist WHERE start_day <= ? ORDER BY seq",
                                    arguments: [today.daysSinceEpoch])
        for row in rows {
            let id = try row.decode(String.self, forColumn: "request_id")
            var status = try waitingStatus(id, db)
            status.state = .expired
            status.reason = "no \(status.size) unit became free before \(status.from)"
            status.waitlist = nil
            status.notifiedAt = nil
            status.attempts = 0
            status.lastError = nil
            status.updatedAt = Timestamp(milliseconds: now)
            status.version = RentalStatus.version(revision: status.revision, step: 4)
            try db.execute(sql: "UPDATE rental SET state = 'expired', status = ?, updated_at = ? WHERE request_id = ?",
                           arguments: [status.jsonText(), now, id])
            try remove(id, db)
            var notification = CustomerNotification(kind: .expiry, request: request(of: status, site: try row.decode(String?.self, forColumn: "site")),
                                                    reason: status.reason, decidedAt: now)
            notification.eventId = CustomerNotification.eventID(request: id, kind: .expiry, revision: status.revision)
            notification.status = status
            try enqueue(status, notification, db)
        }
        return rows.count
    }

    /// Takes `request` off the waiting list (a cancel, a promotion, an expiry).
    static func remove(_ request: String, _ db: Database) throws {
        try db.execute(sql: "DELETE FROM waitlist WHERE request_id = ?", arguments: [request])
    }

    /// The stored status of waiting request `id`.
    ///
    /// - Throws: ``StoredContentDamage`` when its rental row is not `waitlisted` or its status
    ///   does not decode (a waitlist row outlived its state: the store is inconsistent).
    static func waitingStatus(_ id: String, _ db: Database) throws -> RentalStatus {
        let row = try Row.fetchOne(db, sql: "SELECT state, status FROM rental WHERE request_id = ?", arguments: [id])
        guard let row, try row.decode(String.self, forColumn: "state") == "waitlisted",
              let status = RentalStatus(document: try row.decode(String.self, forColumn: "status")) else {
            throw StoredContentDamage("waitlist row of request \(id) without a waitlisted rental")
        }
        return status
    }

    /// The request a status was decided for (what a notification carries), with the site asked for.
    static func request(of status: RentalStatus, site: String?) -> RentalRequest {
        RentalRequest(id: status.id, customer: status.customer, contact: status.contact, size: status.size,
                      period: RentalPeriod(start: status.from, end: status.to) ?? RentalPeriod(start: status.from, end: status.from.adding(days: 1))!,
                      submittedBy: status.submittedBy, submittedByName: status.submittedByName,
                      createdAt: status.createdAt.milliseconds, site: site, waitlist: true)
    }

    /// Puts `status`'s event and `notification` in the outbox (as the allocator's decisions do).
    static func enqueue(_ status: RentalStatus, _ notification: CustomerNotification, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO outbox (kind, payload) VALUES ('journal', ?)", arguments: [Data(status.indexEvent().encoded())])
        try db.execute(sql: "INSERT INTO outbox (kind, item_id, payload) VALUES ('notify', ?, ?)",
                       arguments: [notification.eventId, Data(canonicalJSON(notification))])
    }
}
