import GRDB
import Rentals
import Spool

/// One row of the rate history (store table `rate`).
public struct RateEntry: Codable, Sendable, Equatable {
    /// Its place in the history (newer rows have higher numbers).
    public var seq: Int64
    /// The size class.
    public var size: String
    /// The site, nil for every site without its own rate.
    public var site: String?
    /// The monthly rate in minor units of ``currency``.
    public var monthlyRateMinor: Int64
    /// The ISO 4217 code.
    public var currency: String
    /// When it was set (in force from then on).
    public var since: Timestamp
    /// Who set it (the operator's user name).
    public var setBy: String

    /// An entry.
    public init(seq: Int64, size: String, site: String?, monthlyRateMinor: Int64, currency: String, since: Timestamp, setBy: String) {
        self.seq = seq
        self.size = size
        self.site = site
        self.monthlyRateMinor = monthlyRateMinor
        self.currency = currency
        self.since = since
        self.setBy = setBy
    }

    init(row: Row) throws {
        let site = try row.decode(String.self, forColumn: "site")
        self.init(seq: try row.decode(Int64.self, forColumn: "seq"), size: try row.decode(String.self, forColumn: "size"),
                  site: site.isEmpty ? nil : site, monthlyRateMinor: try row.decode(Int64.self, forColumn: "monthly_minor"),
                  currency: try row.decode(String.self, forColumn: "currency"),
                  since: Timestamp(milliseconds: try row.decode(Int64.self, forColumn: "set_at")),
                  setBy: try row.decode(String.self, forColumn: "set_by"))
    }

    /// JSON: `site` null for every site; `monthly_rate` the amount as decimal text.
    enum CodingKeys: String, CodingKey {
        case seq, size, site, currency, since
        case monthlyRateMinor = "monthly_rate_minor", setBy = "set_by"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(seq, forKey: .seq)
        try container.encode(size, forKey: .size)
        try container.encode(site, forKey: .site)  // null, not omitted: "every site"
        try container.encode(monthlyRateMinor, forKey: .monthlyRateMinor)
        try container.encode(currency, forKey: .currency)
        try container.encode(since, forKey: .since)
        try container.encode(setBy, forKey: .setBy)
    }
}

extension AllocatorStore {
    /// The rates in force in `currency`: the newest row of each (size, site), ordered by size
    /// and site (every-site rows first). Empty for a store before v4 (opened read-only, not
    /// migrated: the allocator has not run since the upgrade).
    public func currentRates(currency: String) throws -> [RateEntry] {
        try read { db in
            guard try db.tableExists("rate") else { return [] }
            return try Row.fetchAll(db, sql: """
                SELECT r.* FROM rate r
                WHERE r.currency = ? AND r.seq = (SELECT MAX(seq) FROM rate n WHERE n.size = r.size AND n.site = r.site AND n.currency = r.currency)
                ORDER BY r.size, r.site
                """, arguments: [currency]).map(RateEntry.init(row:))
        }
    }

    /// Every rate ever set, oldest first, optionally only of `size` and of `site` (`""`: the
    /// every-site rows). Empty for a store before v4.
    public func rateHistory(size: String?, site: String?) throws -> [RateEntry] {
        try read { db in
            guard try db.tableExists("rate") else { return [] }
            return try Row.fetchAll(db, sql: """
                SELECT * FROM rate WHERE (?1 IS NULL OR size = ?1) AND (?2 IS NULL OR site = ?2) ORDER BY seq
                """, arguments: [size, site]).map(RateEntry.init(row:))
        }
    }

    /// Sets a rate (``PriceBook/set(size:site:monthlyMinor:currency:by:now:_:)``) in one
    /// durable transaction and returns its history row.
    ///
    /// - Throws: ``PriceError``; GRDB's errors (busy, full disk).
    @discardableResult
    public func setRate(size: String, site: String?, monthlyMinor: Int64, currency: String, by: String,
                        now: Int64 = Clock.nowMilliseconds()) throws -> RateEntry {
        try write { db in
            try PriceBook.set(size: size, site: site, monthlyMinor: monthlyMinor, currency: currency, by: by, now: now, db)
            return RateEntry(seq: db.lastInsertedRowID, size: size, site: site.flatMap { $0.isEmpty ? nil : $0 }, monthlyRateMinor: monthlyMinor,
                             currency: currency, since: Timestamp(milliseconds: now), setBy: by)
        }
    }
}
