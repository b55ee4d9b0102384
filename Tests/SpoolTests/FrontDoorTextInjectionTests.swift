import Foundation
import Rentals
import Testing
@testable import Allocator
@testable import spoolctl

/// Site names are operator-typed text (`units import` accepts any character but a line break):
/// wherever the front door prints one to a terminal — `availability` (anyone may ask), `status`,
/// `submit --wait`, `units list`, a change's refusal reason naming the site — an escape sequence
/// or a bidi override in it is shown escaped, never sent to the terminal.
@Suite struct FrontDoorTextInjectionTests {
    static let hostileSite = "evil\u{1B}]52;c;cm0gLXJmIH4=\u{07}\u{1B}[2J\u{202E}site"

    static func clean(_ text: String) -> Bool {
        !text.unicodeScalars.contains { [.control, .format].contains($0.properties.generalCategory) && $0 != "\n" }
    }

    @Test func availabilityEscapesSiteNames() {
        let day = CalendarDay(iso: "2099-01-01")!, end = CalendarDay(iso: "2099-02-01")!
        for site in [SiteAvailability(site: Self.hostileSite, unitsInService: 1, free: 1),
                     SiteAvailability(site: Self.hostileSite, unitsInService: 1, free: 0, earliestStart: end),
                     SiteAvailability(site: Self.hostileSite, unitsInService: 0, free: 0)] {
            let text = AvailabilityCommand.render(AvailabilityAnswer(size: "S", from: day, to: end, asOf: Timestamp(milliseconds: 0), sites: [site]))
            #expect(Self.clean(text), "\(text.debugDescription)")
            #expect(text.contains("evil\\u{1B}]52") && text.contains("\\u{202E}site"), "\(text)")
        }
    }

    @Test func statusDetailsEscapeTheSiteAndReasons() {
        var status = RentalStatus(received: RentalRequest(id: "r1", customer: "c", contact: "c@example.com", size: "S",
                                                          period: RentalPeriod(start: CalendarDay(iso: "2099-01-01")!, end: CalendarDay(iso: "2099-02-01")!)!,
                                                          submittedBy: 0, submittedByName: "root", createdAt: 0))
        status.state = .confirmed
        status.unit = "A-1"
        status.site = Self.hostileSite
        status.reason = "no EUR rate is in force for size S at \(Self.hostileSite)"
        status.change = ChangeOutcome(id: "c1", kind: .extend, day: CalendarDay(iso: "2099-03-01")!, applied: false,
                                      reason: "no EUR rate is in force for size S at \(Self.hostileSite), so the added days cannot be priced",
                                      previousTo: CalendarDay(iso: "2099-02-01")!)
        #expect(Self.clean(status.details), "\(status.details.debugDescription)")
        let sentence = ChangeRun.sentence(status, kind: .extend, changeID: "c1", day: CalendarDay(iso: "2099-03-01")!)
        #expect(Self.clean(sentence), "\(sentence.debugDescription)")
    }

    @Test func occupancyCSVEscapesSiteNames() {
        let text = OccupancyCSV.render([OccupancyRow(site: Self.hostileSite, size: "S", unitsInService: 1, rented: 0, free: 1, waitlisted: 0,
                                                     rentedOutOfService: 0, occupancyPercent: "0.0")])
        #expect(!text.unicodeScalars.contains { [.control, .format].contains($0.properties.generalCategory) && !["\r", "\n"].contains($0) },
                "\(text.debugDescription)")
        #expect(text.contains("evil\\u{1B}]52;c;cm0gLXJmIH4=\\u{7}\\u{1B}[2J\\u{202E}site,S,1,0,1,0,0.0\r\n"), "\(text)")
        #expect(OccupancyCSV.field("a\tb") == "a\tb" && OccupancyCSV.field("\u{1B}=1") == "\\u{1B}=1")
    }
}
