import Foundation
import Intake
import Rentals
import Testing
@testable import Spool

/// Prices end to end with the real executables (issue 11, prices): `spoolctl prices`, the price
/// a booking is agreed at (status, store, confirmation text), and that later rates never
/// change it.
@Suite(.serialized) struct PricesTests {
    /// The text of every message in `customer`'s Maildir.
    func messages(_ system: SystemFixture, _ customer: String) throws -> [String] {
        try system.mailbox(customer).map { try String(contentsOfFile: "\(system.spool)/maildir/\(customer)/new/\($0)", encoding: .utf8) }
    }

    struct Listing: Decodable {
        struct Rate: Decodable { var size: String; var site: String?; var monthly_rate: String; var monthly_rate_minor: Int64; var currency: String }
        var currency: String?
        var rates: [Rate]
    }

    @Test func rateChangeDoesNotChangeAnExistingRentalsPrice() throws {
        let system = try SystemFixture(settings: ["currency": "EUR"])
        try system.addUnits([("A-1", "M"), ("A-2", "M")])
        let set = try system.ctl("prices", "set", "--size", "m", "--monthly", "79.00")
        #expect(set.status == 0 && set.output.contains("size M at every site: EUR 79.00 per month"), "\(set.output) \(set.errors)")
        try system.startBoth()
        let first = try system.submit(customer: "alice@example.com", size: "M", from: "2099-01-01", to: "2099-04-01", extra: ["--wait", "30"])
        let confirmed = try system.waitFor(first, .confirmed)
        let agreed = RentalPrice(currency: "EUR", lines: [PriceLine(from: CalendarDay(iso: "2099-01-01")!, to: CalendarDay(iso: "2099-04-01")!,
                                                                    monthlyRateMinor: 7900, amountMinor: 23700)], totalMinor: 23700)
        #expect(confirmed.price == agreed, "the status after the notifier's delivery keeps the price")
        var mail: [String] = []
        #expect(system.eventually { mail = (try? messages(system, "alice@example.com")) ?? []; return mail.count == 1 })
        #expect(mail.first?.contains("  Rate:    EUR 79.00 per month\n  Total:   EUR 237.00\n") == true, "\(mail)")

        let change = try system.ctl("prices", "set", "--size", "M", "--monthly", "99", "--json")
        #expect(change.status == 0, "\(change.errors)")
        let listed = try system.json(Listing.self, "prices", "list")
        #expect(listed.currency == "EUR" && listed.rates.map(\.monthly_rate) == ["99.00"] && listed.rates.first?.site == nil)

        // The existing rental: status, store and message unchanged, even after a restart.
        system.stop("spool-allocator")
        try system.start("spool-allocator")
        #expect(try system.status(first).price == agreed)
        let shown = try system.ctl("status", first).output
        #expect(shown.split(separator: "\n").contains { $0.hasPrefix("price ") && $0.hasSuffix("  EUR 237.00 (EUR 79.00 per month)") }, "\(shown)")
        #expect(try messages(system, "alice@example.com") == mail)
        // A new booking gets the new rate.
        let second = try system.submit(customer: "bob@example.com", size: "M", from: "2099-01-01", to: "2099-02-01", extra: ["--wait", "30"])
        #expect(try system.waitFor(second, .confirmed).price?.lines.map(\.monthlyRateMinor) == [9900])
        #expect(try system.status(first).price == agreed)
        let history = try system.ctl("prices", "history", "--size", "M")
        #expect(history.status == 0 && history.output.contains("79.00") && history.output.contains("99.00"), "\(history.output)")
    }

    @Test func badAmountsUnknownSizesAndNoCurrencyExit65() throws {
        let system = try SystemFixture(settings: ["currency": "EUR"])
        for amount in ["79.001", "-5", "1e3", "0x10", "1,000", "7\u{FF19}", " 1", "99999999999999999999"] {
            let result = try system.ctl("prices", "set", "--size", "M", "--monthly=\(amount)")
            #expect(result.status == 65, "\(amount.debugDescription): \(result.errors)")
        }
        let tooHigh = try system.ctl("prices", "set", "--size", "M", "--monthly", "10000000000000.01")
        #expect(tooHigh.status == 65 && tooHigh.errors.contains("out of range"), "\(tooHigh.errors)")
        #expect(try system.ctl("prices", "set", "--size", "HUGE", "--monthly", "1").status == 65)
        #expect(try system.ctl("prices", "set", "--size", "M", "--site", "*", "--monthly", "1").status == 65)
        #expect(try system.ctl("prices", "set", "--size", "M", "--site", "a\u{1B}[2J", "--monthly", "1").status == 65, "no terminal escapes")
        #expect(try system.ctl("prices", "set", "--size", "M", "--site", String(repeating: "s", count: 65), "--monthly", "1").status == 65)
        #expect(try system.ctl("prices", "history").output.contains("no rates set"), "nothing was set")
        let off = try SystemFixture()
        let refused = try off.ctl("prices", "set", "--size", "M", "--monthly", "1", "--json")
        #expect(refused.status == 65 && refused.errors.contains("no currency"), "\(refused.errors)")
        let listing = try off.json(Listing.self, "prices", "list")
        #expect(listing.currency == nil && listing.rates.isEmpty)
    }

    /// A configuration written on Windows (CRLF, a byte order mark) names the currency exactly,
    /// and `config check` shows it.
    @Test func aCRLFConfigurationNamesTheCurrency() throws {
        let system = try SystemFixture()
        try Data("\u{FEFF}spool_root = \(system.spool)\r\ncurrency = JPY\r\n".utf8).write(to: URL(fileURLWithPath: system.configPath))
        let check = try system.ctl("config", "check")
        #expect(check.status == 0 && check.output.contains("currency") && check.output.contains("JPY"), "\(check.output) \(check.errors)")
        #expect(try system.ctl("prices", "set", "--size", "S", "--monthly", "1200").status == 0)
        #expect(try system.ctl("prices", "set", "--size", "S", "--monthly", "1200.5").status == 65, "JPY has no decimals")
        #expect(try system.json(Listing.self, "prices", "list").rates.map(\.monthly_rate_minor) == [1200])
        try Data("spool_root = \(system.spool)\ncurrency = eur\n".utf8).write(to: URL(fileURLWithPath: system.configPath))
        let bad = try system.ctl("config", "check")
        #expect(bad.status == 78 && bad.errors.contains(":2: currency"), "\(bad.errors)")
    }

    @Test func aClosedStandardOutputExits74() throws {
        let system = try SystemFixture(settings: ["currency": "EUR"])
        #expect(try system.ctl("prices", "set", "--size", "M", "--monthly", "1").status == 0)
        #expect(try OutputFailureTests.ctl(system, ">&-", ["prices", "list"]).status == 74)
        #expect(try OutputFailureTests.ctl(system, ">/dev/full", ["prices", "history", "--json"]).status == 74)
        #expect(try OutputFailureTests.ctlIntoBrokenPipe(system, descriptor: 1, ["prices", "list"]).status == 74)
    }

    /// Through the setgid binary: anyone may list the rates; only operators set them or see the
    /// history (77, nothing written).
    @Test(.enabled(if: getuid() == 0, "needs root to create users and a setgid binary"))
    func onlyOperatorsSetPricesAndAnyoneListsThem() throws {
        let install = try SetgidInstallation("prices", settings: ["currency": "EUR"])
        let early = try install.run(as: "spool-bob", ["spoolctl", "prices", "list"])
        #expect(early.status == 0 && early.output.contains("no rates set"), "\(early.output) \(early.errors)")
        let refused = try install.run(as: "spool-bob", ["spoolctl", "prices", "set", "--size", "M", "--monthly", "1.00"])
        #expect(refused.status == 77 && refused.errors.contains("operator"), "\(refused.errors)")
        #expect(try install.run(as: "spool-bob", ["spoolctl", "prices", "history"]).status == 77)
        let set = try install.run(as: "spool-carol", ["spoolctl", "prices", "set", "--size", "M", "--monthly", "79.00"])
        #expect(set.status == 0, "\(set.errors)")
        let listed = try install.run(as: "spool-bob", ["spoolctl", "prices", "list", "--json"])
        #expect(listed.status == 0, "\(listed.errors)")
        let listing = try JSONDecoder().decode(Listing.self, from: Data(listed.output.utf8))
        #expect(listing.rates.map(\.monthly_rate_minor) == [7900])
        #expect(!listed.output.contains("carol"), "who set a rate is for operators only")
        let history = try install.run(as: "spool-carol", ["spoolctl", "prices", "history"])
        #expect(history.status == 0 && history.output.contains("spool-carol"), "\(history.output)")
    }
}
