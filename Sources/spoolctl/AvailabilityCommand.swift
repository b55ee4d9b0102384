import Allocator
import ArgumentParser
import Foundation
import Intake
import Rentals
import Spool

/// `spoolctl availability`: how many units of a size are free for a whole period, per site, and
/// the earliest start that fits when none is; anyone may ask.
///
/// Read-only and outside the allocator's write path: the store is read through ``StoreReader``
/// (one read transaction, a snapshot as of the allocator's last commit, 2 s at most, then exit
/// 75). The size and period are checked exactly as `submit` checks them (``RentalForm``), with
/// the same messages and codes (64 usage, 65 bad data); an unknown site is 65.
struct AvailabilityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "availability",
        abstract: "Show how many units of a size are free for a whole period, per site, before submitting.",
        discussion: """
            The answer is a snapshot: a submit made on its strength can still be rejected (another \
            customer may be faster); use `submit --waitlist` to wait for a unit.

            One line per site with units of the size in service: how many are free for every day from \
            --from until --to (the day after the last day, as for submit), and the price of the period \
            at the site's rate when prices are set; when none is free, the earliest start within 365 \
            days at which a unit of the size is free for a period of the same length. Waiting-list \
            requests do not reduce the count: the allocator gives a freed unit to a fitting waiting \
            request at once, so a unit shown free has no one waiting for it. The dates, size and \
            length are checked as submit checks them. Anyone may ask. Exit 0 (even when none is free), \
            64 usage, 65 bad date, size, length or unknown site, 75 the allocator's store did not \
            answer within 2 s (try again).
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Unit size class (S, M, L, XL by default).")
    var size: String

    @Option(help: "First day of the rental (YYYY-MM-DD).")
    var from: String

    @Option(help: "Day the rental ends: the day after the last day (YYYY-MM-DD).")
    var to: String?

    @Option(help: "Length in months, instead of --to.")
    var months: Int?

    @Option(help: "Only this site.")
    var site: String?

    func run() throws {
        let configuration = try global.configuration()
        let valid = try global.reporting { try Self.validated(size: size, from: from, to: to, months: months, configuration) }
        let answer = try Self.answer(size: valid.size.name, period: valid.period, site: site, configuration, global)
        if global.json { try printJSON(answer) } else { try emit(Self.render(answer)) }
    }

    /// The size and period of a form as submit checks them (``RentalForm/validate(_:today:)``:
    /// one rule, one set of messages): the customer and contact, which availability does not
    /// ask for, are stand-ins that always pass.
    static func validated(size: String, from: String, to: String?, months: Int?, _ configuration: SystemConfiguration,
                          today: CalendarDay = .today()) throws(IntakeError) -> (size: SizeClass, period: RentalPeriod) {
        let form = RentalForm(customer: "availability", contact: "availability@example.org", size: size, from: from, to: to, months: months)
        let valid = try form.validate(configuration, today: today)
        return (valid.size, valid.period)
    }

    /// The answer of the store of `configuration`'s spool, in one read transaction.
    static func answer(size: String, period: RentalPeriod, site: String?, _ configuration: SystemConfiguration,
                       _ global: GlobalOptions) throws -> AvailabilityAnswer {
        let asOf = Timestamp.now()
        do {
            // The spool as every command opens it (its layout made if missing, as `units list`
            // does); the store itself is never created or written.
            let reader = try StoreReader(spool: try Spool(path: configuration.spoolRoot, create: true))
            let currency: String? = reader.schemaAtLeastV4 ? Self.currency(configuration) : nil
            let (known, sites) = try reader.read { db in
                (try AvailabilityQuery.sites(db), try AvailabilityQuery.answer(size: size, period: period, site: site, currency: currency, db))
            }
            if let site, !known.contains(site) {
                throw Failure(IntakeError(.badData, "no unit is at site \(site.echoed) (spoolctl units list shows the sites)"), json: global.json)
            }
            return AvailabilityAnswer(size: size, from: period.start, to: period.end, asOf: asOf, sites: sites)
        } catch let failure as Failure {
            throw failure
        } catch let timedOut as StoreReader.TimedOut {
            throw Failure(IntakeError(.tryAgain, "availability: \(timedOut)", retryAfterSeconds: 1), json: global.json)
        } catch let notReady as StoreReader.NotReady {
            throw Failure(IntakeError(.tryAgain, "availability: \(notReady)", retryAfterSeconds: 1), json: global.json)
        } catch where DatabaseDamage.isDamage(error) {
            throw Failure(IntakeError(.badData, "availability: the allocator's store is damaged (\(error)); tell an operator"), json: global.json)
        } catch {
            throw Failure(IntakeError.mapping(error, doing: "availability: reading the allocator's store", spoolRoot: configuration.spoolRoot),
                          json: global.json)
        }
    }

    /// The configured currency (prices off when nil).
    static func currency(_ configuration: SystemConfiguration) -> String? {
        configuration.currency
    }

    /// One line per site, or one line when the size has no unit in service anywhere.
    static func render(_ answer: AvailabilityAnswer) -> String {
        guard !answer.sites.isEmpty else { return "no unit of size \(answer.size) is in service" }
        return answer.sites.map { site in
            let name = visible(site.site)  // operator-typed (units import): never drives the terminal
            let price = site.price.map { ", \(Self.format($0))" } ?? ""
            if site.unitsInService == 0 { return "\(name): no unit of size \(answer.size) in service" }
            if site.free > 0 {
                return "\(name): \(site.free) unit\(site.free == 1 ? "" : "s") of size \(answer.size) free \(answer.from) until \(answer.to)\(price)"
            }
            let earliest = site.earliestStart.map { "earliest start \($0)" } ?? "none within \(AvailabilityQuery.horizonDays) days"
            return "\(name): none free; \(earliest)"
        }.joined(separator: "\n")
    }

    /// A price as text: the total of the period (`EUR 237.00`).
    static func format(_ price: RentalPrice) -> String {
        Currency.format(Money(minor: price.totalMinor, currency: price.currency))
    }
}

/// The `--json` document of `spoolctl availability`.
struct AvailabilityAnswer: Encodable {
    var size: String
    var from: CalendarDay
    var to: CalendarDay
    var asOf: Timestamp
    var sites: [SiteAvailability]

    /// Units free at any site.
    var free: Int { sites.reduce(0) { $0 + $1.free } }
    /// When none is free anywhere: the earliest start at any site.
    var earliestStart: CalendarDay? { AvailabilityQuery.earliestStart(sites) }

    enum CodingKeys: String, CodingKey {
        case size, from, to, sites, free
        case asOf = "as_of"
        case earliestStart = "earliest_start"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(size, forKey: .size)
        try container.encode(from, forKey: .from)
        try container.encode(to, forKey: .to)
        try container.encode(asOf, forKey: .asOf)
        try container.encode(sites, forKey: .sites)
        try container.encode(free, forKey: .free)
        try container.encode(earliestStart, forKey: .earliestStart)
    }
}
