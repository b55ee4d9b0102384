import Allocator
import ArgumentParser
import Foundation
import Intake
import Rentals
import Spool

/// `spoolctl occupancy`: units in service, rented, free, waitlisted demand and occupancy per
/// site and size, for a day or a range of days, as a table, `--csv` or `--json`.
///
/// Operators only (exit 77 for anyone else, before anything is opened): occupancy is business
/// data. Read-only, outside the allocator's write path: the store is read through
/// ``StoreReader`` in one transaction, a consistent snapshot as of its last commit (2 s at most,
/// then exit 75); a store not yet created answers with no units, a store not yet migrated to v4
/// with no waitlisted demand, a damaged one exits 65.
/// The figures are defined in ``OccupancyQuery``.
struct Occupancy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "occupancy",
        abstract: "Show units in service, rented, free, waitlisted demand and occupancy per site and size (operators).",
        discussion: """
            For one day (--on, default today): rented = in-service units holding a rental that day, \
            free = the others. For a range (--from D --to D, --to excluded, as for submit): rented = \
            unit-days rented divided by the days (rounded down), free = units free for the whole range, \
            occupancy = unit-days rented / unit-days in service. Occupancy is a percentage with one \
            decimal, rounded half up (empty in CSV, null in JSON, when no unit is in service). \
            Waitlisted: waiting requests whose period covers the day or overlaps the range; those for \
            any site are in the rows of site *. Each site has a total row (size *), and without --site \
            a grand total (site * and size *) ends the list. Units out of service are not counted; \
            rentals they still hold are reported as rented_out_of_service (--json). Only current and \
            future rentals are holdings: a day in the past counts the rentals still held, not those \
            completed or cancelled since. --csv: RFC 4180 with the header \
            site,size,units_in_service,rented,free,waitlisted,occupancy_percent; a site name a \
            spreadsheet would take for a formula (starting with = + - @) gets a leading '. \
            Exit 64 for --on with --from/--to, 65 for a bad date or range, an unknown site or a \
            damaged store, 75 when the allocator's store did not answer within 2 s (try again), 77 for \
            a caller who is not an operator.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Only this site (and the requests waiting for any site).")
    var site: String?

    @Option(help: ArgumentHelp("The day (YYYY-MM-DD; default today).", valueName: "D"))
    var on: String?

    @Option(help: ArgumentHelp("First day of a range (YYYY-MM-DD, with --to).", valueName: "D"))
    var from: String?

    @Option(help: ArgumentHelp("The day after the range's last day (YYYY-MM-DD).", valueName: "D"))
    var to: String?

    @Flag(help: "Print CSV (RFC 4180) instead of a table.")
    var csv = false

    func validate() throws {
        if on != nil, from != nil || to != nil {
            throw ValidationError("--on asks for one day, --from and --to for a range: give one or the other")
        }
        if (from == nil) != (to == nil) { throw ValidationError("a range needs both --from and --to") }
        if csv, global.json { throw ValidationError("--csv and --json are two formats: give one") }
    }

    func run() throws {
        let configuration = try global.configuration()
        try global.requireOperator(global.caller(configuration), to: "see the occupancy")
        let today = CalendarDay.today()
        let period = try requestedPeriod(today: today)
        let rows = try Self.rows(site: site, period: period, today: today, configuration, global)
        if let site, !rows.contains(where: { $0.kind == .site && $0.site == site }) {
            throw Failure(IntakeError(.badData, "no unit is at site \(site.echoed) (spoolctl units list shows the sites)"), json: global.json)
        }
        if global.json {
            try printJSON(Report(on: on == nil && from != nil ? nil : period.start, from: period.start, to: period.end, today: today, rows: rows))
        } else if csv {
            // emit adds the last LF: the document without it.
            try emit(String(String.UnicodeScalarView(OccupancyCSV.render(rows).unicodeScalars.dropLast())))
        } else {
            try emit(Self.render(rows, period: period, single: from == nil, today: today))
        }
    }

    /// The day asked (`[D, D+1)`) or the range; exit 65 for a date that is not one, a range that
    /// does not end after it starts, or a day past the calendar.
    func requestedPeriod(today: CalendarDay) throws -> RentalPeriod {
        func day(_ text: String, _ option: String) throws -> CalendarDay {
            guard let day = CalendarDay(iso: text) else {
                throw Failure(IntakeError(.badData, "\(option) \(text.echoed) is not a date like 2027-01-31"), json: global.json)
            }
            return day
        }
        if let from, let to {
            let start = try day(from, "--from"), end = try day(to, "--to")
            guard let period = RentalPeriod(start: start, end: end) else {
                throw Failure(IntakeError(.badData, "--to \(end) must be after --from \(start) (--to is the day after the range's last day)"),
                              json: global.json)
            }
            return period
        }
        let start = try on.map { try day($0, "--on") } ?? today
        guard start < CalendarDay.latest, let period = RentalPeriod(start: start, end: start.adding(days: 1)) else {
            throw Failure(IntakeError(.badData, "--on \(start) is the calendar's last day; ask for a day before it"), json: global.json)
        }
        return period
    }

    /// The rows from the store, read through ``StoreReader`` (read-only, its own connection, one
    /// read transaction of at most 2 s, no lock, never creating or migrating the store); only a
    /// grand total of zeros (or, for a site, nothing) when the allocator has not created it yet.
    static func rows(site: String?, period: RentalPeriod, today: CalendarDay, _ configuration: SystemConfiguration,
                     _ global: GlobalOptions) throws -> [OccupancyRow] {
        do {
            let reader = try StoreReader(spool: try Spool(path: configuration.spoolRoot))
            let sizes = configuration.sizes.map(\.name)
            return try reader.read { db in try OccupancyQuery.rows(site: site, period: period, today: today, sizeOrder: sizes, db) }
        } catch let timedOut as StoreReader.TimedOut {
            throw Failure(IntakeError(.tryAgain, "occupancy: \(timedOut)", retryAfterSeconds: 1), json: global.json)
        } catch let notReady as StoreReader.NotReady {
            throw Failure(IntakeError(.tryAgain, "occupancy: \(notReady)", retryAfterSeconds: 1), json: global.json)
        } catch where DatabaseDamage.isDamage(error) {
            throw Failure(IntakeError(.badData, "occupancy: the allocator's store is damaged (\(error)); stop the allocator and see docs/operations.md"),
                          json: global.json)
        } catch {
            throw Failure(IntakeError.mapping(error, doing: "occupancy: reading the allocator's store", spoolRoot: configuration.spoolRoot),
                          json: global.json)
        }
    }

    /// The `--json` document: `on` (null for a range), the period `from`/`to` (`to` excluded),
    /// `today` (the day waitlisted requests are judged still waiting), and the rows.
    struct Report: Encodable {
        var on: CalendarDay?
        var from: CalendarDay
        var to: CalendarDay
        var today: CalendarDay
        var rows: [OccupancyRow]

        enum CodingKeys: String, CodingKey { case on, from, to, today, rows }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(on, forKey: .on)  // null for a range, not omitted
            try container.encode(from, forKey: .from)
            try container.encode(to, forKey: .to)
            try container.encode(today, forKey: .today)
            try container.encode(rows, forKey: .rows)
        }
    }

    /// The human table: a title line, the rows (totals named `(all)`, the any-site demand
    /// `(any)`), then a note for what is not counted.
    static func render(_ rows: [OccupancyRow], period: RentalPeriod, single: Bool, today: CalendarDay) -> String {
        let title = single ? "occupancy on \(period.start)"
            : "occupancy from \(period.start) until \(period.end) (\(period.days) days; rented = unit-days / days, free = free for the whole range)"
        var lines = [title]
        if !rows.contains(where: { $0.kind == .size || $0.kind == .anySite }) {
            lines.append("no units")
            return lines.joined(separator: "\n")
        }
        let cells = rows.map { row -> [String] in
            let site = row.kind == .anySite ? "(any)" : row.kind == .total ? "(all)" : displayed(row.site)
            let size = row.kind == .site || row.kind == .total ? "(all)" : row.size
            return [site, size, String(row.unitsInService), String(row.rented), String(row.free), String(row.waitlisted),
                    row.occupancyPercent.map { "\($0)%" } ?? "-"]
        }
        lines.append(Table(headers: ["SITE", "SIZE", "IN SERVICE", "RENTED", "FREE", "WAITLISTED", "OCCUPANCY"], rows: cells).render())
        let outOfService = rows.filter { $0.kind == .size }.reduce(0) { $0 + $1.rentedOutOfService }
        if outOfService > 0 {
            lines.append("not counted: units out of service still rented (\(outOfService); rented_out_of_service in --json)")
        }
        if period.start < today {
            lines.append("days before today count only the rentals still held (completed and cancelled ones are not)")
        }
        return lines.joined(separator: "\n")
    }

    /// `name` with control and format characters escaped (`\u{1B}`): a site name is text an
    /// operator typed, and must not drive the terminal.
    static func displayed(_ name: String) -> String {
        var text = ""
        for scalar in name.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format: text += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: text.unicodeScalars.append(scalar)
            }
        }
        return text
    }
}
