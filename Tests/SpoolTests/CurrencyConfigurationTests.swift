import Testing
@testable import Rentals

/// The configuration key `currency` (issue 11, prices): an ISO 4217 code or nothing, read from
/// any line ending, listed by `config check` so that the listing parses back.
struct CurrencyConfigurationTests {
    func parsed(_ text: String) throws -> SystemConfiguration {
        var configuration = SystemConfiguration()
        try configuration.apply(text, file: "f")
        return configuration
    }

    @Test func currencyIsAnISOCodeOrNothing() throws {
        #expect(try parsed("").currency == nil, "default: prices off")
        #expect(try parsed("currency = EUR\n").currency == "EUR")
        #expect(try parsed("currency =\n").currency == nil, "empty: prices off")
        #expect(try parsed("\u{FEFF}currency = JPY\r\nmax_attempts = 3\r\n").currency == "JPY", "CRLF and a byte order mark")
        #expect(try parsed("currency = USD\rsender = a <a@b>\r").currency == "USD", "CR alone")
        #expect(try parsed("currency = CHF # Swiss francs\n").currency == "CHF")
        for bad in ["eur", "EURO", "EU", "E1R", "€", "EUR,USD", "ÉUR", "EUR\u{0}"] {
            #expect(throws: ConfigurationError.self, "\(bad.debugDescription)") { try parsed("currency = \(bad)\n") }
        }
        let error = #expect(throws: ConfigurationError.self) { try parsed("sender = a <a@b>\ncurrency = eur\n") }
        #expect(error?.message.hasPrefix("f:2: currency must be an ISO 4217 code") == true, "\(String(describing: error))")
    }

    @Test func theListingParsesBackAndAnUnknownCodeIsWarned() throws {
        for currency in [nil, "EUR", "XYZ"] as [String?] {
            var configuration = SystemConfiguration()
            configuration.currency = currency
            let listing = configuration.keyValues.map { "\($0.key) = \($0.value)" }.joined(separator: "\n")
            #expect(configuration.keyValues.contains { $0.key == "currency" && $0.value == (currency ?? "") })
            #expect(try parsed(listing) == configuration)
            let warned = configuration.warnings(file: nil, sources: [:]).contains { $0.contains("currency XYZ is not in the built-in table") }
            #expect(warned == (currency == "XYZ"))
        }
    }
}
