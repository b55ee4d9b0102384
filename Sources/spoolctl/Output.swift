import Foundation
import Intake

/// Prints `value` as pretty, key-sorted JSON.
func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self))
}

/// Prints a dictionary of JSON values as pretty, key-sorted JSON.
func printJSONObject(_ object: Any) {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
    print(String(decoding: data, as: UTF8.self))
}

/// A plain text table: a header row, then aligned columns separated by two spaces.
struct Table {
    let headers: [String]
    var rows: [[String]] = []

    func render() -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }
}

extension RentalStatus {
    /// One table row: id, state, customer, size, period, unit, updated.
    var tableRow: [String] {
        [id, state.rawValue, customer, size, from.description, to.description, unit ?? "-", updatedAt.description]
    }

    static let tableHeaders = ["ID", "STATE", "CUSTOMER", "SIZE", "FROM", "TO", "UNIT", "UPDATED"]

    /// A key/value listing for one request.
    var details: String {
        var lines: [(String, String)] = [
            ("id", id), ("state", state.rawValue), ("customer", customer), ("contact", contact), ("size", size),
            ("period", "\(from) until \(to)"), ("unit", unit.map { u in site.map { "\(u) at \($0)" } ?? u } ?? "-"),
        ]
        if let reason { lines.append(("reason", reason)) }
        if let cancelRequestedAt { lines.append(("cancel requested", cancelRequestedAt.description)) }
        lines.append(("notified", notifiedAt?.description ?? "-"))
        if attempts > 0 { lines.append(("attempts", String(attempts))) }
        if let lastError { lines.append(("last error", lastError)) }
        lines += [("submitted by", submittedByName), ("created", createdAt.description), ("updated", updatedAt.description)]
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { "\($0.0.padding(toLength: width, withPad: " ", startingAt: 0))  \($0.1)" }.joined(separator: "\n")
    }
}
