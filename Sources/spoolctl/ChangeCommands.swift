import ArgumentParser
import Foundation
import Intake
import Rentals

/// `spoolctl extend ID --to D` and `spoolctl end ID --on D`: what both share.
struct ChangeRun {
    let global: GlobalOptions
    let kind: RentalChange.Kind
    let id: String
    let dayText: String
    let option: String
    let wait: Int?

    func run() throws {
        guard let day = CalendarDay(iso: dayText) else {
            throw Failure(IntakeError(.badData, "\(option) \(dayText.echoed) is not a date like 2027-04-01"), json: global.json)
        }
        let (intake, caller) = try global.intake()
        let submission = try global.reporting { try intake.change(kind, id: id, day: day, caller: caller) }
        switch submission {
        case .already(let status):
            if global.json { try printJSON(status) } else { try emit(Self.already(status, kind: kind)) }
        case .queued(let changeID):
            guard let wait else {
                try delivering(changeID) {
                    if global.json {
                        try printJSONObject(["id": id, "change": changeID, "kind": kind.rawValue, "day": day.description, "result": "queued"])
                    } else {
                        try emit("\(kind == .extend ? "extension" : "end") of request \(id) \(kind == .extend ? "to" : "on") \(day) requested (change \(changeID)); the customer is notified of the outcome")
                    }
                }
                return
            }
            let status = try global.reporting {
                try intake.waitForChange(id, changeID: changeID, caller: caller, timeout: .seconds(max(0, wait)), day: day)
            }
            guard let status else {
                throw Failure(IntakeError(.tryAgain, "the \(kind.rawValue) of request \(id) (change \(changeID)) is still queued after \(wait) s; it stays queued (spoolctl status \(id))"),
                              json: global.json)
            }
            try delivering(changeID) {
                if global.json { try printJSON(status) } else { try emit(Self.sentence(status, kind: kind, changeID: changeID, day: day)) }
            }
        }
    }

    /// Runs `body`, which writes the result; if standard output fails, the change is queued
    /// (or decided) all the same: the error says so and where to see the outcome (exit 74).
    private func delivering(_ changeID: String, _ body: () throws -> Void) throws {
        do { try body() } catch let failure as Failure where failure.error.code == .ioError {
            throw Failure(IntakeError(.ioError, "the \(kind.rawValue) of request \(id) is queued (change \(changeID)), but \(failure.error.message); spoolctl status \(id) shows its outcome"),
                          json: false)
        }
    }

    /// The answer when the rental already ends on the day asked for.
    static func already(_ status: RentalStatus, kind: RentalChange.Kind) -> String {
        "request \(status.id) already \(kind == .extend ? "runs until" : "ends on") \(status.to); nothing to change"
    }

    /// The answer once the change is decided (or can no longer be).
    static func sentence(_ status: RentalStatus, kind: RentalChange.Kind, changeID: String, day: CalendarDay) -> String {
        let unit = status.unit ?? "?"
        guard let change = status.change, change.id == changeID else {
            if status.state != .assigned, status.state != .confirmed {
                return "request \(status.id) not \(kind == .extend ? "extended" : "ended early"): it is \(status.state.rawValue)"
            }
            if status.to == day { return already(status, kind: kind) }
            return "the \(kind.rawValue) of request \(status.id) is decided; a later change followed: unit \(unit) until \(status.to) (spoolctl status \(status.id))"
        }
        guard change.applied else {
            let what = kind == .extend ? "not extended" : "not ended early"
            return "request \(status.id) \(what): \(visible(change.reason ?? "refused")); the rental is unchanged: unit \(unit) until \(status.to)"
        }
        switch kind {
        case .extend:
            return "request \(status.id) extended: unit \(unit) until \(status.to)\(Self.addedPrice(status))"
        case .end:
            return "request \(status.id) ends on \(status.to): unit \(unit) released from \(status.to)"
        }
    }

    /// ` (added EUR 79.00 at EUR 79.00/month)` for a priced extension, else empty.
    static func addedPrice(_ status: RentalStatus) -> String {
        guard let price = status.price, let line = price.lines.last, line.to == status.to else { return "" }
        return " (added \(money(line.amountMinor, price.currency)) at \(money(line.monthlyRateMinor, price.currency))/month)"
    }

    static func money(_ minor: Int64, _ currency: String) -> String {
        Currency.format(Money(minor: minor, currency: currency))
    }
}

struct Extend: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extend",
        abstract: "Extend a rental: the same unit until a later day, if it is free that long.",
        discussion: """
            The allocator extends the rental only if the same unit is free for the added days; otherwise \
            the extension is refused with the reason (the date from which the unit is taken) and the \
            rental is unchanged. The added days are priced at the rate in force now. --to is the new \
            end: the day after the last day. An extension to the rental's current end does nothing (exit \
            0), so a retry is harmless. With --wait the answer is the decision: applied or refused both \
            exit 0 (the text and --json's change.applied and change.reason say which); still queued after \
            the wait exits 75 (the change stays queued). The customer is notified of the outcome.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The request id.")
    var id: String

    @Option(help: "The new end of the rental: the day after the last day (YYYY-MM-DD).")
    var to: String

    @Option(help: "Wait up to SECONDS (default 30) for the allocator's decision.")
    var wait: Int?

    func run() throws {
        try ChangeRun(global: global, kind: .extend, id: id, dayText: to, option: "--to", wait: wait).run()
    }
}

struct End: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "end",
        abstract: "End a rental early: the unit is released from that day.",
        discussion: """
            --on is the new end: the first day the unit is no longer rented, from the day after the first \
            day of the rental (or today, if later) to the day before its current end. To give up a rental \
            before its first day, use spoolctl cancel. The rest of the period is released (and offered to \
            the waiting list) and the price re-computed for the shorter period. An end on the current end \
            does nothing (exit 0), so a retry is harmless. With --wait the answer is the decision: applied \
            or refused both exit 0; still queued after the wait exits 75. The customer is notified.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The request id.")
    var id: String

    @Option(help: "The first day the unit is no longer rented (YYYY-MM-DD).")
    var on: String

    @Option(help: "Wait up to SECONDS (default 30) for the allocator's decision.")
    var wait: Int?

    func run() throws {
        try ChangeRun(global: global, kind: .end, id: id, dayText: on, option: "--on", wait: wait).run()
    }
}

extension ChangeOutcome {
    /// One line for `spoolctl status`: `extend to 2099-03-01: refused (unit A-1 is taken from 2099-02-15)`.
    var summary: String {
        let outcome = applied ? "applied" : "refused (\(reason ?? "no reason given"))"
        return "\(kind == .extend ? "extend to" : "end on") \(day): \(outcome), was until \(previousTo)"
    }
}
