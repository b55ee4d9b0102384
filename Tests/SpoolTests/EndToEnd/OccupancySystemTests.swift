import Foundation
import GRDB
import Rentals
import Testing
@testable import Allocator
@testable import Spool

/// `spoolctl occupancy` with the real executables: the figures equal a count over the
/// allocator's store after submits, a cancel and a retirement; `--csv` says the same as
/// `--json`; bad input, a missing store, a closed stdout and a non-operator (issue 11, item 4).
@Suite(.serialized) struct OccupancySystemTests {
    struct Report: Decodable {
        var on: String?
        var from: String
        var to: String
        var today: String
        var rows: [OccupancyRow]
    }

    /// The rows expected for `[start, end)`, counted day by day over the store's raw rows
    /// (units, assigned rentals, waiting list), read by the test itself.
    static func expected(_ spool: String, start: String, end: String, today: CalendarDay) throws -> [String: OccupancyRow] {
        let store = try AllocatorStore(spool: Spool(path: spool), readOnly: true)
        let (units, holdings, waiting) = try store.read { db in
            (try Row.fetchAll(db, sql: "SELECT id, size, site, in_service FROM unit"),
             try Row.fetchAll(db, sql: "SELECT unit_id, start_day, end_day FROM rental WHERE state = 'assigned'"),
             try Row.fetchAll(db, sql: "SELECT size, site, start_day, end_day FROM waitlist"))
        }
        let days = Array(CalendarDay(iso: start)!.daysSinceEpoch..<CalendarDay(iso: end)!.daysSinceEpoch)
        var sums: [String: [Int]] = [:]  // key -> in service, held, unit-days, retired days, waitlisted
        func bump(_ key: String, _ values: [Int]) { sums[key] = zip(sums[key] ?? [0, 0, 0, 0, 0], values).map(+) }
        for unit in units {
            let id: String = unit["id"], site: String = unit["site"], size: String = unit["size"], inService: Bool = unit["in_service"]
            let rented = days.filter { day in holdings.contains { ($0["unit_id"] as String?) == id && ($0["start_day"] as Int) <= day && day < ($0["end_day"] as Int) } }.count
            let values = inService ? [1, rented > 0 ? 1 : 0, rented, 0, 0] : [0, 0, 0, rented, 0]
            for key in ["size\u{1}\(site)\u{1}\(size)", "site\u{1}\(site)", "total"] { bump(key, values) }
        }
        for request in waiting where (request["start_day"] as Int) > today.daysSinceEpoch {
            guard days.contains(where: { (request["start_day"] as Int) <= $0 && $0 < (request["end_day"] as Int) }) else { continue }
            let site: String? = request["site"], size: String = request["size"]
            for key in (site.map { ["size\u{1}\($0)\u{1}\(size)", "site\u{1}\($0)"] } ?? ["any\u{1}\(size)"]) + ["total"] { bump(key, [0, 0, 0, 0, 1]) }
        }
        var rows: [String: OccupancyRow] = [:]
        for (key, sum) in sums {
            let parts = key.split(separator: "\u{1}", omittingEmptySubsequences: false).map(String.init)
            let kind: OccupancyRow.Kind = parts[0] == "size" ? .size : parts[0] == "site" ? .site : parts[0] == "any" ? .anySite : .total
            let site = kind == .size || kind == .site ? parts[1] : "*"
            let size = kind == .size ? parts[2] : kind == .anySite ? parts[1] : "*"
            let percent: String? = sum[0] == 0 ? nil : {
                let tenths = Decimal(sum[2] * 1000) / Decimal(sum[0] * days.count)
                var rounded = Decimal(), value = tenths
                NSDecimalRound(&rounded, &value, 0, .plain)  // half away from zero
                let whole = NSDecimalNumber(decimal: rounded).intValue
                return "\(whole / 10).\(whole % 10)"
            }()
            rows[key] = OccupancyRow(site: site, size: size, unitsInService: sum[0], rented: sum[2] / days.count, free: sum[0] - sum[1],
                                     waitlisted: sum[4], rentedOutOfService: sum[3] / days.count, occupancyPercent: percent, kind: kind)
        }
        return rows
    }

    static func keyed(_ rows: [OccupancyRow]) -> [String: OccupancyRow] {
        Dictionary(rows.map { row -> (String, OccupancyRow) in
            switch row.kind {
            case .size: return ("size\u{1}\(row.site)\u{1}\(row.size)", row)
            case .site: return ("site\u{1}\(row.site)", row)
            case .anySite: return ("any\u{1}\(row.size)", row)
            case .total: return ("total", row)
            }
        }, uniquingKeysWith: { a, _ in a })
    }

    /// RFC 4180 records (quoted fields, doubled quotes, CRLF), parsed here independently of the writer.
    static func csvRecords(_ text: String) -> [[String]] {
        var records: [[String]] = [], record: [String] = [], field = "", quoted = false
        var scalars = Array(text.unicodeScalars)[...]
        while let scalar = scalars.popFirst() {
            if quoted {
                if scalar == "\"" {
                    if scalars.first == "\"" { field.unicodeScalars.append(scalars.removeFirst()) } else { quoted = false }
                } else { field.unicodeScalars.append(scalar) }
            } else if scalar == "\"" { quoted = true } else if scalar == "," { record.append(field); field = "" } else if scalar == "\r" {
                guard scalars.first == "\n" else { return [] }  // a bare CR is not a record end
                scalars.removeFirst()
                record.append(field); records.append(record); record = []; field = ""
            } else { field.unicodeScalars.append(scalar) }
        }
        return field.isEmpty && record.isEmpty ? records : []
    }

    @Test func occupancyEqualsACountOverTheStoreAfterSubmitsAndACancel() throws {
        let system = try SystemFixture()
        let odd = "north, \"2\"", formula = "=cmd|' /C calc'!A0"
        for (id, size, site) in [("M-1", "M", "main"), ("M-2", "M", "main"), ("M-3", "M", "main"), ("S-1", "S", "main"),
                                 ("M-4", "M", odd), ("S-2", "S", formula)] {
            let added = try system.ctl("units", "add", id, "--size", size, "--site", site)
            #expect(added.status == 0, "\(added.errors)")
        }
        // What the inventory refuses never reaches a report: a site name on two lines.
        #expect(try system.ctl("units", "add", "X-1", "--size", "M", "--site", "two\nlines").status == 65)
        try system.startBoth()
        var ids: [String] = []
        for _ in 0..<4 { ids.append(try system.submit(size: "M", from: "2099-01-01", to: "2099-02-01")) }
        ids.append(try system.submit(size: "S", from: "2099-01-15", to: "2099-03-01"))
        ids.append(try system.submit(size: "S", from: "2099-01-20", to: "2099-01-25"))
        var statuses = try ids.map { try system.waitFor($0, .confirmed) }
        #expect(try system.ctl("cancel", ids[0]).status == 0)
        _ = try system.waitFor(ids[0], .cancelled)
        // A unit retired while it holds a rental: its rental stands, out of the counts.
        statuses = try ids.map { try system.status($0) }
        let retired = try #require(statuses[1].unit)
        #expect(try system.ctl("units", "retire", retired).status == 0)
        _ = system.stop("spool-allocator")
        _ = system.stop("spool-notifier")
        // Waiting requests as the waitlist feature stores them: one for any site, one for main.
        let writable = try AllocatorStore(spool: Spool(path: system.spool))
        try writable.write { db in
            for (id, size, site, start, end) in [("w1", "M", nil, "2099-01-05", "2099-01-20"), ("w2", "S", "main", "2099-01-08", "2099-02-08"),
                                                 ("w3", "M", "main", "2099-03-01", "2099-04-01")] as [(String, String, String?, String, String)] {
                let (from, to) = (CalendarDay(iso: start)!.daysSinceEpoch, CalendarDay(iso: end)!.daysSinceEpoch)
                try db.execute(sql: "INSERT INTO rental (request_id, state, unit_id, start_day, end_day, status, updated_at) VALUES (?, 'waitlisted', NULL, ?, ?, '{}', 0)",
                               arguments: [id, from, to])
                try db.execute(sql: "INSERT INTO waitlist (request_id, size, site, start_day, end_day, since) VALUES (?, ?, ?, ?, ?, 0)",
                               arguments: [id, size, site, from, to])
            }
        }

        let today = CalendarDay.today()
        let day = try system.json(Report.self, "occupancy", "--on", "2099-01-10")
        #expect(day.on == "2099-01-10" && day.from == "2099-01-10" && day.to == "2099-01-11" && day.today == today.description)
        let dayExpected = try Self.expected(system.spool, start: "2099-01-10", end: "2099-01-11", today: today)
        #expect(Self.keyed(day.rows) == dayExpected, "\(day.rows)\n\(dayExpected.sorted { $0.key < $1.key }.map(\.value))")
        #expect(day.rows.count == Self.keyed(day.rows).count)
        let total = try #require(day.rows.last)
        #expect(total.kind == .total && total.rented == 2 && total.rentedOutOfService == 1 && total.waitlisted == 2, "\(total)")

        let range = try system.json(Report.self, "occupancy", "--from", "2099-01-01", "--to", "2099-03-01")
        #expect(range.on == nil && range.from == "2099-01-01" && range.to == "2099-03-01")
        let rangeExpected = try Self.expected(system.spool, start: "2099-01-01", end: "2099-03-01", today: today)
        #expect(Self.keyed(range.rows) == rangeExpected, "\(range.rows)\n\(rangeExpected.sorted { $0.key < $1.key }.map(\.value))")

        // --site: that site's rows, its total and the any-site demand; no grand total.
        let site = try system.json(Report.self, "occupancy", "--on", "2099-01-10", "--site", odd)
        #expect(Set(site.rows.map(\.site)) == [odd, "*"] && !site.rows.contains { $0.kind == .total }, "\(site.rows)")

        // --csv: the same rows, names quoted and neutralized, CRLF records.
        let csv = try system.ctl("occupancy", "--on", "2099-01-10", "--csv")
        #expect(csv.status == 0, "\(csv.errors)")
        let records = Self.csvRecords(csv.output)
        #expect(records.first == ["site", "size", "units_in_service", "rented", "free", "waitlisted", "occupancy_percent"], "\(csv.output)")
        #expect(records.dropFirst().map { $0.count } == Array(repeating: 7, count: day.rows.count))
        for (record, row) in zip(records.dropFirst(), day.rows) {
            let name = row.site == formula ? "'" + formula : row.site
            #expect(record == [name, row.size, "\(row.unitsInService)", "\(row.rented)", "\(row.free)", "\(row.waitlisted)", row.occupancyPercent ?? ""])
        }
        #expect(csv.output.contains("\"north, \"\"2\"\"\""), "\(csv.output)")

        let text = try system.ctl("occupancy", "--on", "2099-01-10")
        #expect(text.status == 0 && text.output.hasPrefix("occupancy on 2099-01-10\nSITE"), "\(text.output)")
        #expect(text.output.contains("not counted: units out of service still rented (1;"), "\(text.output)")
    }

    @Test func badInputMissingStoreAndClosedOutput() throws {
        let system = try SystemFixture()
        let noSpool = try system.ctl("occupancy")
        #expect(noSpool.status == 66 && noSpool.errors.contains("not found"), "\(noSpool.errors)")
        // No store yet: no units, a grand total of zeros.
        _ = try Spool(path: system.spool, create: true)
        let empty = try system.json(Report.self, "occupancy")
        #expect(empty.rows == [OccupancyRow(site: "*", size: "*", unitsInService: 0, rented: 0, free: 0, waitlisted: 0,
                                            rentedOutOfService: 0, occupancyPercent: nil, kind: .total)])
        #expect(empty.on == CalendarDay.today().description)
        #expect(!FileManager.default.fileExists(atPath: "\(system.spool)/allocator/state.sqlite"), "a read creates no store")
        // A store file that is no store (zero-length): damage, 65, never "no units".
        try FileManager.default.createDirectory(atPath: "\(system.spool)/allocator", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: "\(system.spool)/allocator/state.sqlite", contents: Data()))
        let damaged = try system.ctl("occupancy")
        #expect(damaged.status == 65 && damaged.errors.contains("damaged"), "\(damaged.errors)")
        try FileManager.default.removeItem(atPath: "\(system.spool)/allocator/state.sqlite")
        for (arguments, code) in [(["--on", "2099-02-30"], 65), (["--on", "tomorrow"], 65), (["--from", "2099-02-01", "--to", "2099-01-01"], 65),
                                  (["--from", "2099-01-01", "--to", "2099-01-01"], 65), (["--on", "9999-12-31"], 65),
                                  (["--on", "2099-01-01", "--from", "2099-01-01", "--to", "2099-02-01"], 64), (["--from", "2099-01-01"], 64),
                                  (["--csv", "--json"], 64), (["--site", "nowhere"], 65)] as [([String], Int32)] {
            let result = try system.ctl(["occupancy"] + arguments)
            #expect(result.status == code, "\(arguments): \(result.errors)")
            #expect(result.errors.split(separator: "\n").count == 1, "\(arguments): one line: \(result.errors)")
        }
        try system.addUnits([("A-1", "M")])
        // Ten years, and a day far in the past.
        let decade = try system.json(Report.self, "occupancy", "--from", "2030-01-01", "--to", "2040-01-01")
        #expect(decade.rows.last?.unitsInService == 1 && decade.rows.last?.occupancyPercent == "0.0")
        let past = try system.ctl("occupancy", "--on", "1900-01-01")
        #expect(past.status == 0 && past.output.contains("days before today count only the rentals still held"), "\(past.output)")
        // A result nobody can read is not a success; nothing crashes.
        for redirection in [">&-", ">/dev/full"] {
            let result = try OutputFailureTests.ctl(system, redirection, ["occupancy", "--csv"])
            #expect(result.status == 74, "\(redirection): \(result.errors)")
        }
        #expect(try OutputFailureTests.ctlIntoBrokenPipe(system, descriptor: 1, ["occupancy", "--json"]).status == 74)
    }

    @Test(.enabled(if: getuid() == 0, "needs root to create users and a setgid binary"))
    func onlyOperatorsSeeTheOccupancy() throws {
        let install = try SetgidInstallation("occupancy")
        #expect(try install.asRoot(["units", "add", "A-1", "--size", "S"]).status == 0)
        for arguments in [["occupancy"], ["occupancy", "--json"], ["occupancy", "--csv", "--on", "2099-01-01"]] {
            let refused = try install.run(as: "spool-bob", ["spoolctl"] + arguments)
            #expect(refused.status == 77, "\(arguments): \(refused.errors)")
            #expect(refused.errors == "spoolctl: only root or members of the operator group may see the occupancy\n", "\(refused.errors)")
            #expect(!refused.output.contains("A-1") && !refused.output.contains("units_in_service"), "\(refused.output)")
        }
        let allowed = try install.run(as: "spool-carol", ["spoolctl", "occupancy", "--json"])
        #expect(allowed.status == 0, "\(allowed.errors)")
        #expect(allowed.output.contains("\"units_in_service\" : 1"), "\(allowed.output)")
    }
}
