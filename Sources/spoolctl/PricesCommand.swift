import Allocator
import ArgumentParser
import Foundation
import Intake
import Rentals
import Spool

/// `spoolctl prices`: the monthly rates per size (and optionally per site), kept as a history
/// in the allocator's store. A booking is priced at the rate in force when it is decided and
/// keeps that price; a later rate changes only later bookings.
struct Prices: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prices",
        abstract: "Show and set the monthly rates of unit sizes.",
        discussion: """
            Amounts are exact decimals in the configured currency (key currency, e.g. EUR): 79, 79.5 or \
            79.00, never more decimals than the currency has; no sign, spaces or separators. Without a \
            currency prices are off. A rental keeps the price it was booked at; an extension is priced at \
            the rate in force when it is decided. A period costs the rate for each whole month from its \
            start plus rate x days / 30 for the days left, rounded half up to the minor unit.
            """,
        subcommands: [ListPrices.self, SetPrice.self, History.self])

    /// The configured currency, or exit 65 saying prices are off.
    static func currency(_ configuration: SystemConfiguration, _ global: GlobalOptions) throws -> String {
        guard let currency = configuration.currency else {
            throw Failure(IntakeError(.badData, "prices are off: no currency is configured (set currency = EUR in the configuration)"), json: global.json)
        }
        return currency
    }

    /// The rate as a table cell: `79.00`.
    static func amount(_ entry: RateEntry) -> String {
        Currency.amountText(entry.monthlyRateMinor, exponent: Currency.exponent(entry.currency) ?? 2)
    }

    /// A rate for output: the history row plus the amount as decimal text; `seq` and `set_by`
    /// only for operators (`history`, `set`).
    struct Shown: Encodable {
        let entry: RateEntry
        let audit: Bool

        enum Keys: String, CodingKey {
            case size, site, currency, since, seq
            case monthlyRate = "monthly_rate", monthlyRateMinor = "monthly_rate_minor", setBy = "set_by"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(entry.size, forKey: .size)
            try container.encode(entry.site, forKey: .site)  // null: every site without its own rate
            try container.encode(entry.currency, forKey: .currency)
            try container.encode(Prices.amount(entry), forKey: .monthlyRate)
            try container.encode(entry.monthlyRateMinor, forKey: .monthlyRateMinor)
            try container.encode(entry.since, forKey: .since)
            if audit {
                try container.encode(entry.seq, forKey: .seq)
                try container.encode(entry.setBy, forKey: .setBy)
            }
        }
    }

    struct Listing: Encodable {
        let currency: String?
        let rates: [Shown]
    }

    struct ListPrices: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the monthly rates in force (anyone may).",
            discussion: "A rate with site * applies at every site that has no rate of its own for the size.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let (store, configuration) = try Units.readableStore(global)
            guard let currency = configuration.currency else {
                if global.json { try printJSON(Listing(currency: nil, rates: [])) } else { try emit("prices are off: no currency is configured") }
                return
            }
            let rates: [RateEntry]
            do { rates = try store?.currentRates(currency: currency) ?? [] } catch {
                throw Failure(IntakeError.mapping(error, doing: "reading the rates", spoolRoot: configuration.spoolRoot), json: global.json)
            }
            if global.json { try printJSON(Listing(currency: currency, rates: rates.map { Shown(entry: $0, audit: false) })); return }
            guard !rates.isEmpty else { try emit("no rates set (currency \(currency))"); return }
            try emit(Table(headers: ["SIZE", "SITE", "MONTHLY", "CURRENCY", "SINCE"],
                           rows: rates.map { [$0.size, $0.site.map(visible) ?? "*", Prices.amount($0), $0.currency, $0.since.description] }).render())
        }
    }

    struct SetPrice: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Set the monthly rate of a size, at one site or every site (operators only).",
            discussion: """
                In force at once for new bookings and extensions; existing rentals keep their price. The \
                history keeps every rate (spoolctl prices history). Exit 65 for a bad amount, an unknown \
                size, a bad site or no configured currency; 77 for a caller who is not an operator.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(help: "Size class.") var size: String
        @Option(help: "Site name (default: every site without its own rate).") var site: String?
        @Option(help: "Monthly rate, e.g. 79.00, in the configured currency.") var monthly: String

        func run() throws {
            try global.requireOperator(to: "set prices")
            let configuration = try global.configuration()
            let currency = try Prices.currency(configuration, global)
            guard let sizeClass = configuration.size(named: size) else {
                throw Failure(IntakeError(.badData, "unknown unit size \(size.echoed) (configured: \(configuration.sizes.map(\.name).joined(separator: ", ")))"),
                              json: global.json)
            }
            if site == "*" {
                throw Failure(IntakeError(.badData, "give no --site for the rate of every site"), json: global.json)
            }
            if let site, !(1...64).contains(site.count) || site.contains(where: { $0.isNewline || $0.unicodeScalars.contains { $0.properties.generalCategory == .control } }) {
                throw Failure(IntakeError(.badData, "site \(site.echoed) must be 1 to 64 characters on one line"), json: global.json)
            }
            guard let money = Currency.parse(monthly, code: currency) else {
                let decimals = Currency.exponent(currency) ?? 2
                throw Failure(IntakeError(.badData, "monthly rate \(monthly.echoed) is not an amount of \(currency): digits\(decimals == 0 ? " only" : " with at most \(decimals) decimal\(decimals == 1 ? "" : "s") after a point") (\(Currency.amountText(7900, exponent: decimals)))"),
                              json: global.json)
            }
            let (store, _) = try Units.store(global, operatorAction: "set prices")
            let entry: RateEntry
            do {
                entry = try store.setRate(size: sizeClass.name, site: site, monthlyMinor: money.minor, currency: currency,
                                          by: global.caller(configuration).name)
            } catch let error as PriceError {
                throw Failure(IntakeError(.badData, error.description), json: global.json)
            } catch {
                throw Failure(IntakeError.mapping(error, doing: "setting the rate", spoolRoot: configuration.spoolRoot), json: global.json)
            }
            if global.json { try printJSON(Shown(entry: entry, audit: true)); return }
            try emit("size \(entry.size) at \(entry.site.map { "site \(visible($0))" } ?? "every site"): \(Currency.format(money)) per month from \(entry.since)")
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "history",
            abstract: "List every rate ever set, oldest first, with who set it (operators only).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this size class.") var size: String?
        @Option(help: "Only this site (* for the every-site rates).") var site: String?

        func run() throws {
            try global.requireOperator(to: "see the price history")
            let (store, configuration) = try Units.store(global, operatorAction: "see the price history")
            let rates: [RateEntry]
            do { rates = try store.rateHistory(size: size.map { configuration.size(named: $0)?.name ?? $0 }, site: site == "*" ? "" : site) } catch {
                throw Failure(IntakeError.mapping(error, doing: "reading the rates", spoolRoot: configuration.spoolRoot), json: global.json)
            }
            if global.json { try printJSON(Listing(currency: configuration.currency, rates: rates.map { Shown(entry: $0, audit: true) })); return }
            guard !rates.isEmpty else { try emit("no rates set"); return }
            try emit(Table(headers: ["SEQ", "SINCE", "SIZE", "SITE", "MONTHLY", "CURRENCY", "SET BY"],
                           rows: rates.map { [String($0.seq), $0.since.description, $0.size, $0.site.map(visible) ?? "*", Prices.amount($0), $0.currency, visible($0.setBy)] }).render())
        }
    }
}
