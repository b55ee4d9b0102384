import GRDB
import Rentals
import Spool

/// What one site offers for a size and period (one line of `spoolctl availability`).
public struct SiteAvailability: Encodable, Sendable, Equatable {
    /// The site.
    public var site: String
    /// Its units of the size in service (free or not).
    public var unitsInService: Int
    /// Of those, the units free for the whole period: what a submit for this site would get now.
    public var free: Int
    /// When none is free: the earliest start within ``AvailabilityQuery/horizonDays`` at which a
    /// unit of the size at this site is free for a period of the same length; nil otherwise
    /// (and when there is none within the horizon).
    public var earliestStart: CalendarDay?
    /// The price of the period at this site's rate in force (one line); nil when prices are
    /// off, no rate applies, or the store predates rates (schema v3). JSON:
    /// `{"currency", "monthly_rate_minor", "total_minor"}`.
    public var price: RentalPrice?

    /// A site's answer.
    public init(site: String, unitsInService: Int, free: Int, earliestStart: CalendarDay? = nil, price: RentalPrice? = nil) {
        self.site = site
        self.unitsInService = unitsInService
        self.free = free
        self.earliestStart = earliestStart
        self.price = price
    }

    enum CodingKeys: String, CodingKey {
        case site, free, price
        case unitsInService = "units_in_service"
        case earliestStart = "earliest_start"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(site, forKey: .site)
        try container.encode(unitsInService, forKey: .unitsInService)
        try container.encode(free, forKey: .free)
        try container.encode(earliestStart, forKey: .earliestStart)  // null, not absent
        try container.encode(price.map(PriceSummary.init), forKey: .price)
    }

    /// The JSON of ``price``: the rate and the total of the period.
    struct PriceSummary: Encodable {
        var currency: String
        var monthlyRateMinor: Int64?
        var totalMinor: Int64

        init(_ price: RentalPrice) {
            currency = price.currency
            monthlyRateMinor = price.lines.first?.monthlyRateMinor
            totalMinor = price.totalMinor
        }

        enum CodingKeys: String, CodingKey {
            case currency
            case monthlyRateMinor = "monthly_rate_minor"
            case totalMinor = "total_minor"
        }
    }
}

/// Availability before submitting, answered in one read transaction of the allocator's store
/// (``StoreReader``) with the allocator's own queries (``Availability``), so the count is what
/// best fit would find at that snapshot.
///
/// "Free" is free for the whole period: an in-service unit of the size holding no assigned
/// rental that overlaps it. Waitlisted demand does not reduce it: the allocator keeps no fitting
/// period free while a fitting request waits (it promotes in the transaction that frees one),
/// so a free unit has no waiting taker and a submit made now would get it, unless another
/// submit is decided first. The answer is a snapshot, not a reservation.
///
/// Cost: two index seeks per in-service unit of the size (the sites' counts), plus, for each
/// site with none free, the earliest-start search of ``Availability`` over that site's units.
public enum AvailabilityQuery {
    /// How far ahead the earliest start is looked for (as in rejections).
    public static let horizonDays = 365

    /// Every site with an in-service unit of `size` (only `site` when given, listed even when it
    /// has none of the size), by name. `currency` nil: prices off (pass nil too for a store
    /// without schema v4; see ``StoreReader/schemaAtLeastV4``).
    ///
    /// - Throws: ``StoredContentDamage`` for a stored value that is not a day; GRDB errors.
    public static func answer(size: String, period: RentalPeriod, site: String?, currency: String?,
                              _ db: Database) throws -> [SiteAvailability] {
        var counts: [(site: String, units: Int)] = try Row.fetchAll(db, sql: """
            SELECT site, count(*) FROM unit WHERE size = :size AND in_service = 1 AND (:site IS NULL OR site = :site)
            GROUP BY site ORDER BY site
            """, arguments: ["size": size, "site": site]).map { row in
            (try row.decode(String.self, atIndex: 0), try row.decode(Int.self, atIndex: 1))
        }
        if let site, counts.isEmpty { counts = [(site, 0)] }
        return try counts.map { entry in
            let free = try Availability.freeUnitCount(size: size, period: period, site: entry.site, db)
            let earliest = free > 0 ? nil
                : try Availability.earliestStart(size: size, period: period, site: entry.site, horizonDays: horizonDays, db)
            return SiteAvailability(site: entry.site, unitsInService: entry.units, free: free, earliestStart: earliest,
                                    price: try price(size: size, site: entry.site, period: period, currency: currency, db))
        }
    }

    /// The sites the inventory names (any unit, in service or not), by name: a site asked for
    /// that is not among them is unknown.
    public static func sites(_ db: Database) throws -> [String] {
        try String.fetchAll(db, sql: "SELECT DISTINCT site FROM unit ORDER BY site")
    }

    /// The earliest start over all sites: the earliest of the sites' when none is free anywhere.
    public static func earliestStart(_ sites: [SiteAvailability]) -> CalendarDay? {
        guard sites.allSatisfy({ $0.free == 0 }) else { return nil }
        return sites.compactMap(\.earliestStart).min()
    }

    /// The price of booking `period` at `site` now (``PriceBook/quote(size:site:period:currency:_:)``:
    /// the rate in force, whole months and days/30): what the confirmation would state if the
    /// rate does not change before the decision. Nil without a currency or a rate.
    static func price(size: String, site: String, period: RentalPeriod, currency: String?, _ db: Database) throws -> RentalPrice? {
        try PriceBook.quote(size: size, site: site, period: period, currency: currency, db)
    }
}
