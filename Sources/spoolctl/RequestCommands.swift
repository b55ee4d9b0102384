import ArgumentParser
import Foundation
import Intake
import Rentals

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a rental request; prints its id once it is durably queued.",
        // Two forms; the blank line keeps the first (a single request) the usage that tools
        // reading `--help` (the hostile campaign) take as the command's.
        usage: """
            spoolctl submit [--spool <spool>] [--config <config>] [--json] --customer <customer> --contact <contact> \
            --size <size> --from <from> [--to <to>] [--months <months>] [--site <site>] [--waitlist] [--idempotency-key <idempotency-key>] [--wait <wait>]

            spoolctl submit [--spool <spool>] [--config <config>] [--json] --batch <FILE>
            """,
        discussion: """
            If the id cannot be written to standard output (closed, full disk, broken pipe), the request \
            stays queued and submit exits 74 naming it on standard error; submit again with the same \
            --idempotency-key to get the id of that request without creating a second one. A key reused \
            with a different customer, contact, size, period, site or --waitlist is refused (exit 65).

            --site X assigns only units at site X. --waitlist turns a rejection for lack of units into \
            the state waitlisted: the request waits, first come first served per size and site, and is \
            assigned (and the customer notified) as soon as a cancel, an early end or a new unit frees a \
            unit that fits its whole period; it expires on its start date if none does (state expired, \
            notified). A request starting tomorrow at the earliest can wait; one starting today is \
            rejected as without --waitlist. With --wait, a decided request exits 0 whatever the decision \
            (assigned, rejected or waitlisted): the text or --json says which; still queued: exit 75. \
            spoolctl cancel takes a waitlisted request off the list.

            --batch FILE submits many requests at once: one JSON object per line (LF or CRLF; - reads \
            standard input) with the fields customer, contact, size, from, to or months, and optionally \
            idempotency_key, site (a string) and waitlist (true or false); at most 10,000 lines and 4 MiB (beyond: exit 65, nothing queued); no request \
            at all: exit 64. The valid lines are queued together, durably, as one spool item; each request \
            gets its own id, and each line its own result: a table (LINE, ID, RESULT) or, with --json, one \
            JSON array of {line, id, created, state} or {line, error, exit_code}. Exit 0 when every line \
            was accepted, 65 when any was refused (the accepted ones are queued all the same).
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Who rents: e-mail address, phone number or customer number.")
    var customer: String?

    @Option(help: "Where notifications go: e-mail address or +phone.")
    var contact: String?

    @Option(help: "Unit size class (S, M, L, XL by default).")
    var size: String?

    @Option(help: "First day of the rental (YYYY-MM-DD).")
    var from: String?

    @Option(help: "Day the rental ends: the day after the last day (YYYY-MM-DD).")
    var to: String?

    @Option(help: "Length in months, instead of --to.")
    var months: Int?

    @Option(name: .customLong("idempotency-key"), help: "A retried submit with the same key returns the first request.")
    var idempotencyKey: String?

    @Option(help: "Only a unit at this site (default: any site).")
    var site: String?

    @Flag(help: "When no unit is free, wait on the waiting list (state waitlisted) instead of being rejected.")
    var waitlist = false

    @Option(help: "Wait up to SECONDS (default 30) for the allocator's decision.")
    var wait: Int?

    @Option(help: ArgumentHelp("Submit every request of FILE (JSON lines; - for standard input) instead; see spoolctl help submit.",
                               valueName: "FILE"))
    var batch: String?

    func validate() throws {
        let single: [(String, Bool)] = [("--customer", customer != nil), ("--contact", contact != nil), ("--size", size != nil),
                                        ("--from", from != nil), ("--to", to != nil), ("--months", months != nil),
                                        ("--idempotency-key", idempotencyKey != nil), ("--wait", wait != nil),
                                        ("--site", site != nil), ("--waitlist", waitlist)]
        if batch != nil {
            if let option = single.first(where: \.1) {
                throw ValidationError("--batch takes every request from its file: \(option.0) is given per line there")
            }
        } else if let missing = single.prefix(4).first(where: { !$0.1 }) {
            throw ValidationError("Missing expected argument '\(missing.0)'")
        }
    }

    func run() throws {
        if let batch { return try SubmitBatch(global: global, path: batch).run() }
        let (intake, caller) = try global.intake()
        guard let customer, let contact, let size, let from else { return }  // validate() made sure
        let form = RentalForm(customer: customer, contact: contact, size: size, from: from, to: to, months: months,
                              idempotencyKey: idempotencyKey, site: site, waitlist: waitlist)
        if let site { try Self.requireKnownSite(site, global) }
        let submission = try global.reporting { try intake.submit(form, caller: caller) }
        guard let wait else {
            try delivering(submission.id, "is queued") {
                if global.json {
                    try printJSONObject(["id": submission.id, "created": submission.created, "state": "received"])
                } else {
                    try emit(submission.created ? "request \(submission.id) accepted" : "request \(submission.id) (already submitted with this key)")
                }
            }
            return
        }
        let status = try global.reporting { try intake.waitForDecision(submission.id, caller: caller, timeout: .seconds(max(0, wait))) }
        try delivering(submission.id, "was accepted") {
            if global.json { try printJSON(status) } else { try emit(Self.sentence(status)) }
        }
        if status.state == .received {
            throw Failure(IntakeError(.tryAgain, "request \(submission.id) is still queued after \(wait) s; it stays queued (spoolctl status \(submission.id))"),
                          json: false)
        }
    }

    /// Runs `body`, which writes the result; if standard output fails, the request is queued
    /// all the same: the error names it and says how to get its id again (exit 74).
    private func delivering(_ id: String, _ state: String, _ body: () throws -> Void) throws {
        do { try body() } catch let failure as Failure where failure.error.code == .ioError {
            let retry = idempotencyKey == nil ? "spoolctl list shows it" : "submitting again with the same --idempotency-key returns it"
            throw Failure(IntakeError(.ioError, "request \(id) \(state), but \(failure.error.message); \(retry)"), json: false)
        }
    }

    static func sentence(_ status: RentalStatus) -> String {
        switch status.state {
        case .assigned, .confirmed:
            return "request \(status.id) \(status.state.rawValue): unit \(status.unit ?? "?") at \(visible(status.site ?? "?")), \(status.size), \(status.from) until \(status.to)"
        case .rejected:
            return "request \(status.id) rejected: \(status.reason ?? "no unit available")"
        case .waitlisted:
            let position = status.waitlist?.position.map { "; position \($0) in the waiting list" } ?? ""
            return "request \(status.id) waitlisted: \(status.reason ?? "no \(status.size) unit is free")"
                + "; you will be told when one is assigned (expires \(status.from)\(position))"
        case .expired:
            return "request \(status.id) expired: \(status.reason ?? "no \(status.size) unit became free before \(status.from)")"
        default:
            return "request \(status.id) \(status.state.rawValue)"
        }
    }
}

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a rental request; its unit is released.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The request id.")
    var id: String

    func run() throws {
        let (intake, caller) = try global.intake()
        let outcome = try global.reporting { try intake.cancel(id, caller: caller) }
        switch outcome {
        case .requested:
            if global.json { try printJSONObject(["id": id, "result": "cancel-requested"]) } else {
                try emit("cancel of request \(id) requested; its unit is released and the customer notified shortly")
            }
        case .nothingToDo(let message):
            if global.json { try printJSONObject(["id": id, "result": "no-op", "message": message]) } else { try emit(message) }
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show one request (by id) or a customer's requests, newest first.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The request id.")
    var id: String?

    @Option(help: "Show every request of this customer instead.")
    var customer: String?

    func validate() throws {
        guard (id == nil) != (customer == nil) else { throw ValidationError("give a request id or --customer, not both or neither") }
    }

    func run() throws {
        let (intake, caller) = try global.intake()
        if let id {
            let status = try global.reporting { try intake.status(id, caller: caller) }
            if global.json { try printJSON(status) } else { try emit(status.details) }
        } else if let customer {
            let statuses = try global.reporting { try intake.statuses(customer: customer, caller: caller) }
            try printStatuses(statuses, json: global.json)
        }
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the requests you may see (all of them for operators), newest first.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Only requests in this state: received, assigned, confirmed, rejected, cancelled, completed, waitlisted, expired.")
    var state: String?

    func run() throws {
        var filter: RentalState?
        if let state {
            guard let parsed = RentalState(rawValue: state) else {
                throw Failure(IntakeError(.usage, "unknown state \(state.echoed); states are \(RentalState.allCases.map(\.rawValue).joined(separator: ", "))"),
                              json: global.json)
            }
            filter = parsed
        }
        let (intake, caller) = try global.intake()
        try printStatuses(try global.reporting { try intake.list(state: filter, caller: caller) }, json: global.json)
    }
}

func printStatuses(_ statuses: [RentalStatus], json: Bool) throws {
    if json {
        try printJSON(statuses)
    } else if statuses.isEmpty {
        try emit("no requests")
    } else {
        try emit(Table(headers: RentalStatus.tableHeaders, rows: statuses.map(\.tableRow)).render())
    }
}
