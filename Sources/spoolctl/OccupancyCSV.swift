import Allocator
import Foundation

/// `spoolctl occupancy --csv`: RFC 4180 text, safe to open in a spreadsheet.
///
/// - Header `site,size,units_in_service,rented,free,waitlisted,occupancy_percent`, then one
///   record per row in the order of the table; records end in CRLF (RFC 4180), the last one too.
/// - A field holding a comma, a double quote, CR or LF is quoted, its quotes doubled.
/// - **Formula injection**: a site name is text an operator typed (`units add --site`), and a
///   spreadsheet evaluates a cell starting with `=`, `+`, `-`, `@` (or a tab or CR) as a formula.
///   Such a field is written with a leading `'` (OWASP's advice; spreadsheets show the text,
///   and the `'` tells a reader it was added); `--json` gives the exact names. Only names can
///   start so: sizes are letters and digits, numbers are never negative.
/// - `*` in `site` marks the any-site and grand total rows, `*` in `size` the totals; a real
///   site named `*` (the inventory accepts it) is written `'*`, so the marker stays unambiguous.
/// - `occupancy_percent` is empty when no unit is in service (JSON: null).
/// - Control and format characters in a name are written escaped (`\u{1B}`), as in the table.
enum OccupancyCSV {
    static let header = "site,size,units_in_service,rented,free,waitlisted,occupancy_percent"

    /// The whole document, each record followed by CRLF.
    static func render(_ rows: [OccupancyRow]) -> String {
        var records = [header]
        for row in rows {
            let site = row.site == "*" && (row.kind == .size || row.kind == .site) ? "'*" : field(row.site)
            records.append([site, field(row.size), String(row.unitsInService), String(row.rented), String(row.free),
                            String(row.waitlisted), row.occupancyPercent ?? ""].joined(separator: ","))
        }
        return records.map { $0 + "\r\n" }.joined()
    }

    /// `text` as one CSV field: neutralized if a spreadsheet would take it for a formula, then
    /// quoted if it needs to be.
    static func field(_ text: String) -> String {
        // Control and format characters but tab, CR and LF (which CSV quotes) escaped (`\u{1B}`), as
        // in the table: CSV is often read in a terminal, and an escape sequence in a site name must
        // not drive it (--json gives the exact name).
        var value = ""
        for scalar in text.unicodeScalars {
            if ["\t", "\n", "\r"].contains(scalar) { value.unicodeScalars.append(scalar) } else { value += Occupancy.displayed(String(scalar)) }
        }
        if let first = value.unicodeScalars.first, ["=", "+", "-", "@", "\t", "\r"].contains(first) { value = "'" + value }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
