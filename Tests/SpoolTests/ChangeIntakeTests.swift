import Foundation
import Rentals
import Testing
@testable import Intake

/// The front door's checks of `spoolctl extend` and `spoolctl end` (``IntakeService/checkChange(_:of:day:today:configuration:)``).
@Suite struct ChangeIntakeTests {
    private func status(_ state: RentalState, _ from: String = "2099-01-01", _ to: String = "2099-03-01") -> RentalStatus {
        var status = RentalStatus(received: RentalRequest(id: "r1", customer: "c", contact: "c@example.com", size: "S",
                                                          period: RentalPeriod(start: CalendarDay(iso: from)!, end: CalendarDay(iso: to)!)!,
                                                          submittedBy: 0, submittedByName: "root", createdAt: 0))
        status.state = state
        return status
    }

    /// The exit code of the check, 0 when it passes.
    private func code(_ kind: RentalChange.Kind, _ status: RentalStatus, _ day: String, today: String = "2099-01-10",
                      months: Int = 36) -> Int32 {
        var configuration = SystemConfiguration()
        configuration.maxPeriodMonths = months
        do {
            try IntakeService.checkChange(kind, of: status, day: CalendarDay(iso: day)!, today: CalendarDay(iso: today)!, configuration: configuration)
            return 0
        } catch { return error.code.rawValue }
    }

    @Test func onlyARentalWithAUnitCanChange() {
        for state in [RentalState.assigned, .confirmed] { #expect(code(.extend, status(state), "2099-04-01") == 0) }
        for state in [RentalState.rejected, .cancelled, .completed, .expired, .waitlisted] {
            #expect(code(.extend, status(state), "2099-04-01") == 65, "\(state)")
            #expect(code(.end, status(state), "2099-02-01") == 65, "\(state)")
        }
        #expect(code(.extend, status(.received), "2099-04-01") == 75, "not decided yet: try later")
        var cancelling = status(.confirmed)
        cancelling.cancelRequestedAt = Timestamp(milliseconds: 1)
        #expect(code(.end, cancelling, "2099-02-01") == 65)
    }

    @Test func daysMustChangeTheEndTheRightWay() {
        let rental = status(.confirmed)
        #expect(code(.extend, rental, "2099-03-01") == 0 && code(.end, rental, "2099-03-01") == 0, "the current end: nothing to do")
        #expect(code(.extend, rental, "2099-02-01") == 65, "an extension must move the end later")
        #expect(code(.extend, rental, "2099-04-01", today: "2099-03-01") == 65, "ended: the daily pass completes it")
        #expect(code(.extend, rental, "2099-04-01", today: "2099-02-28") == 0)
        #expect(code(.extend, rental, "2102-01-01", months: 36) == 0, "max_period_months counted from the first day")
        #expect(code(.extend, rental, "2102-01-02", months: 36) == 65)
        #expect(code(.end, rental, "2099-04-01") == 65, "an end must move the end earlier")
        #expect(code(.end, rental, "2099-01-01") == 65, "on the first day: that is a cancel")
        #expect(code(.end, rental, "2099-01-02", today: "2098-12-01") == 0, "the day after the first day")
        #expect(code(.end, rental, "2099-01-09") == 65, "in the past")
        #expect(code(.end, rental, "2099-01-10") == 0, "today: the unit is free from today")
        var tired = rental
        tired.revision = RentalStatus.maximumRevision
        #expect(code(.extend, tired, "2099-04-01") == 65, "too many changes")
    }
}
