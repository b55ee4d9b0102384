import Foundation
import Intake
import Rentals
import Testing

/// Dates, timestamps, configuration and validation rules.
@Suite struct DomainTests {
    @Test func calendarDaysRoundTripAndAddMonthsClamped() {
        for text in ["1970-01-01", "2000-02-29", "2027-12-31", "2099-03-01", "1969-12-31"] {
            #expect(CalendarDay(iso: text)?.description == text)
        }
        #expect(CalendarDay(iso: "1970-01-02")?.daysSinceEpoch == 1)
        for bad in ["2027-02-29", "2100-02-29", "2027-13-01", "2027-00-10", "27-01-01", "2027-1-01", "2027-01-01T00:00", ""] {
            #expect(CalendarDay(iso: bad) == nil, "\(bad)")
        }
        #expect(CalendarDay(iso: "2027-01-31")!.adding(months: 1)?.description == "2027-02-28")
        #expect(CalendarDay(iso: "2028-01-31")!.adding(months: 1)?.description == "2028-02-29")
        #expect(CalendarDay(iso: "2027-11-15")!.adding(months: 3)?.description == "2028-02-15")
        // Every day of four centuries round-trips through its components.
        var day = CalendarDay(iso: "1900-01-01")!
        while day < CalendarDay(iso: "2300-01-01")! {
            let (year, month, dayOfMonth) = day.components
            #expect(CalendarDay(year: year, month: month, day: dayOfMonth) == day)
            day = day.adding(days: 1)
        }
    }

    @Test func timestampsAreRFC3339UTC() {
        let stamp = Timestamp(milliseconds: 1_795_692_080_244)
        #expect(stamp.description == "2026-11-26T11:21:20.244Z")
        #expect(Timestamp(rfc3339: stamp.description) == stamp)
        #expect(Timestamp(milliseconds: 0).description == "1970-01-01T00:00:00.000Z")
    }

    @Test func configurationFileIsStrict() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("conf-\(getpid())-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("spool.conf").path
        try Data("spool_root = /srv/spool  # comment\nsizes = s:1, M:2.5\nmax_period_months = 12\n".utf8).write(to: URL(fileURLWithPath: file))
        let loaded = try SystemConfiguration.load(explicitPath: file, environment: [:])
        #expect(loaded.spoolRoot == "/srv/spool")
        #expect(loaded.sizes.map(\.name) == ["S", "M"])
        #expect(loaded.maxPeriodMonths == 12)
        #expect(try SystemConfiguration.load(explicitPath: file, spoolOverride: "/x", environment: ["SPOOL_ROOT": "/y"]).spoolRoot == "/x")
        #expect(try SystemConfiguration.load(explicitPath: file, environment: ["SPOOL_ROOT": "/y"]).spoolRoot == "/y")
        for bad in ["colour = red", "max_period_months = lots", "sizes = S", "breaker_low_water = 5000", "no equals sign"] {
            try Data("\(bad)\n".utf8).write(to: URL(fileURLWithPath: file))
            #expect(throws: ConfigurationError.self, "\(bad)") { try SystemConfiguration.load(explicitPath: file, environment: [:]) }
        }
        #expect(throws: ConfigurationError.self) { try SystemConfiguration.load(explicitPath: "/nonexistent.conf", environment: [:]) }
    }

    @Test func validationAcceptsWhatCustomersTypeAndRefusesTheRest() throws {
        let today = CalendarDay(iso: "2027-01-01")!
        let configuration = SystemConfiguration()
        let good = RentalForm(customer: "+4915112345678", contact: "a.b+tag@example.co.uk", size: "m", from: "2027-01-01", months: 36)
        let fields = try good.validate(configuration, today: today)
        #expect(fields.size.name == "M")
        #expect(fields.period.end.description == "2030-01-01")
        var tooLong = good
        tooLong.months = 37
        #expect(throws: IntakeError.self) { try tooLong.validate(configuration, today: today) }
        var past = good
        past.from = "2026-12-31"
        #expect((try? past.validate(configuration, today: today)) == nil)
        for contact in ["a@b", "@example.com", "a@-example.com", "a..@example.com.", "+49", "0049151", "a@exa mple.com"] {
            var form = good
            form.contact = contact
            #expect((try? form.validate(configuration, today: today)) == nil, "\(contact)")
        }
    }
}
