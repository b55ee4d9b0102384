import Foundation
import GRDB
import Logging
import Rentals
import Testing
@testable import Allocator
@testable import Notifier
@testable import Spool

/// Rates and booking prices in process, on a real store (issue 11, prices).
@Suite struct PriceBookTests {
    func service(currency: String?, units: [StorageUnit] = [StorageUnit(id: "U-1", size: "M", site: "north")]) throws -> (AllocationService, Spool) {
        let (_, spool) = try makeSpool()
        var configuration = SystemConfiguration()
        configuration.currency = currency
        let service = try AllocationService(spool: spool, configuration: configuration, logger: Logger(label: "test"))
        try service.store.addUnits(units, sizes: SizeClass.defaults)
        return (service, spool)
    }

    func request(_ id: String, size: String = "M", _ from: String, _ to: String) -> RentalRequest {
        RentalRequest(id: id, customer: "c-\(id)", contact: "c@example.com", size: size,
                      period: RentalPeriod(start: CalendarDay(iso: from)!, end: CalendarDay(iso: to)!)!,
                      submittedBy: 0, submittedByName: "root", createdAt: 0)
    }

    /// The rental row's status document and price columns.
    func stored(_ service: AllocationService, _ id: String) throws -> (status: RentalStatus?, currency: String?, amount: Int64?) {
        try service.store.read { db in
            let row = try #require(try Row.fetchOne(db, sql: "SELECT status, currency, amount_minor FROM rental WHERE request_id = ?", arguments: [id]))
            return (RentalStatus(document: row["status"] as String), row["currency"], row["amount_minor"])
        }
    }

    /// The notifications in the outbox, decoded.
    func outboxNotifications(_ service: AllocationService) throws -> [(CustomerNotification, Data)] {
        try service.store.read { db in
            try Row.fetchAll(db, sql: "SELECT payload FROM outbox WHERE kind = 'notify' ORDER BY seq").map { row in
                let data: Data = row["payload"]
                return (try JSONDecoder().decode(CustomerNotification.self, from: data), data)
            }
        }
    }

    @Test func theRateInForceIsTheNewestForTheSiteElseForEverySiteInTheCurrency() throws {
        let (service, _) = try service(currency: "EUR")
        try service.store.write { db in
            #expect(try PriceBook.current(size: "M", site: "north", currency: "EUR", db) == nil)
            try PriceBook.set(size: "M", site: nil, monthlyMinor: 7900, currency: "EUR", by: "op", now: 1, db)
            #expect(try PriceBook.current(size: "M", site: "north", currency: "EUR", db) == 7900, "the every-site rate")
            try PriceBook.set(size: "M", site: "north", monthlyMinor: 9900, currency: "EUR", by: "op", now: 2, db)
            try PriceBook.set(size: "M", site: nil, monthlyMinor: 5000, currency: "EUR", by: "op", now: 3, db)
            #expect(try PriceBook.current(size: "M", site: "north", currency: "EUR", db) == 9900, "the site's own rate wins")
            #expect(try PriceBook.current(size: "M", site: "south", currency: "EUR", db) == 5000, "the newest every-site rate")
            try PriceBook.set(size: "M", site: "north", monthlyMinor: 8900, currency: "EUR", by: "op", now: 4, db)
            #expect(try PriceBook.current(size: "M", site: "north", currency: "EUR", db) == 8900, "the newest wins")
            #expect(try PriceBook.current(size: "M", site: "north", currency: "USD", db) == nil, "rates are per currency")
            #expect(try PriceBook.current(size: "L", site: "north", currency: "EUR", db) == nil)
            #expect(throws: PriceError.self) { try PriceBook.set(size: "M", site: nil, monthlyMinor: -1, currency: "EUR", by: "op", now: 5, db) }
            #expect(throws: PriceError.self) {
                try PriceBook.set(size: "M", site: nil, monthlyMinor: PriceBook.maximumMonthlyMinor + 1, currency: "EUR", by: "op", now: 5, db)
            }
        }
        #expect(try service.store.currentRates(currency: "EUR").map { "\($0.size) \($0.site ?? "*") \($0.monthlyRateMinor)" } == ["M * 5000", "M north 8900"])
        #expect(try service.store.rateHistory(size: "M", site: "north").map(\.monthlyRateMinor) == [9900, 8900])
        #expect(try service.store.rateHistory(size: nil, site: nil).count == 4)
    }

    @Test func aBookingKeepsItsPriceWhenTheRateChanges() throws {
        let (service, _) = try service(currency: "EUR")
        try service.store.setRate(size: "M", site: nil, monthlyMinor: 7900, currency: "EUR", by: "op")
        #expect(try service.decide(.allocate(request("r1", "2099-01-01", "2099-04-01"))) == .assigned(unit: "U-1"))
        let before = try stored(service, "r1")
        let expected = RentalPrice(currency: "EUR", lines: [PriceLine(from: CalendarDay(iso: "2099-01-01")!, to: CalendarDay(iso: "2099-04-01")!,
                                                                      monthlyRateMinor: 7900, amountMinor: 23700)], totalMinor: 23700)
        #expect(before.status?.price == expected && before.currency == "EUR" && before.amount == 23700)
        // The confirmation carries the decided status (so the notifier keeps the price) and says it.
        let (notification, _) = try #require(try outboxNotifications(service).first)
        #expect(notification.status?.price == expected)
        let text = MessageRenderer.render(notification, sender: "s <s@example.com>", date: 0)
        #expect(text.contains("  Rate:    EUR 79.00 per month\n  Total:   EUR 237.00\n"), "\(text)")

        try service.store.setRate(size: "M", site: nil, monthlyMinor: 12000, currency: "EUR", by: "op")
        let after = try stored(service, "r1")
        #expect(after.status == before.status && after.currency == "EUR" && after.amount == 23700, "a rate change touches no rental")
        #expect(try service.decide(.allocate(request("r2", "2099-05-01", "2099-06-01"))) == .assigned(unit: "U-1"))
        #expect(try stored(service, "r2").amount == 12000, "a new booking gets the new rate")
    }

    @Test func withoutACurrencyOrARateTheConfirmationIsTodays() throws {
        for currency in [nil, "EUR"] as [String?] {
            let (service, _) = try service(currency: currency)
            if currency == nil { try service.store.setRate(size: "M", site: nil, monthlyMinor: 7900, currency: "EUR", by: "op") }
            let request = request("r1", "2099-01-01", "2099-04-01")
            #expect(try service.decide(.allocate(request)) == .assigned(unit: "U-1"))
            let row = try stored(service, "r1")
            #expect(row.status?.price == nil && row.currency == nil && row.amount == nil)
            let (_, data) = try #require(try outboxNotifications(service).first)
            let old = CustomerNotification(kind: .confirmation, request: request, unit: "U-1", site: "north", decidedAt: 0)
            var decodedOld = try JSONDecoder().decode(CustomerNotification.self, from: data)
            decodedOld.decidedAt = 0
            #expect(decodedOld == old && !String(decoding: data, as: UTF8.self).contains("\"status\""), "byte for byte the old notification")
            #expect(!MessageRenderer.render(decodedOld, sender: "s <s@example.com>", date: 0).contains("Total"))
        }
    }

    @Test func aCurrencyChangeLeavesRentalsInTheirCurrencyAndOldRatesOutOfForce() throws {
        let (eur, spool) = try service(currency: "EUR", units: [StorageUnit(id: "U-1", size: "M", site: "north"), StorageUnit(id: "U-2", size: "M", site: "north")])
        try eur.store.setRate(size: "M", site: nil, monthlyMinor: 7900, currency: "EUR", by: "op")
        #expect(try eur.decide(.allocate(request("r1", "2099-01-01", "2099-02-01"))) == .assigned(unit: "U-1"))
        var configuration = SystemConfiguration()
        configuration.currency = "USD"
        let usd = try AllocationService(spool: spool, configuration: configuration, logger: Logger(label: "test"))
        #expect(try usd.decide(.allocate(request("r2", "2099-01-01", "2099-02-01"))) == .assigned(unit: "U-2"))
        #expect(try stored(usd, "r2").status?.price == nil, "no USD rate: unpriced, never EUR amounts called dollars")
        #expect(try stored(usd, "r1").status?.price?.currency == "EUR" && stored(usd, "r1").currency == "EUR")
    }

    /// The adversary: a rate far above `prices set`'s limit written straight into the store, and
    /// a ten-year booking at it. The price overflows 64 bits: the decision must neither trap nor
    /// book unpriced; the request is rejected with the reason and the unit stays free.
    @Test func anUnpriceableBookingIsRejectedNotTrapped() throws {
        let (service, _) = try service(currency: "EUR")
        try service.store.write { db in
            try db.execute(sql: "INSERT INTO rate (size, site, monthly_minor, currency, set_at, set_by) VALUES ('M', '', ?, 'EUR', 0, 'sql')",
                           arguments: [Int64.max])
        }
        let decision = try service.decide(.allocate(request("r1", "2099-01-01", "2109-01-01")))
        guard case .rejected(let reason) = decision else { Issue.record("\(decision)"); return }
        #expect(reason.contains("cannot be priced"), "\(reason)")
        #expect(try service.store.assignments().isEmpty, "nothing booked")
        #expect(try stored(service, "r1").status?.state == .rejected)
        #expect(try outboxNotifications(service).first?.0.kind == .rejection)
        // A one-month booking at the same rate fits (Int64.max exactly) and is priced.
        #expect(try service.decide(.allocate(request("r2", "2099-01-01", "2099-02-01"))) == .assigned(unit: "U-1"))
        #expect(try stored(service, "r2").amount == Int64.max)
    }
}
