import DaemonRuntime
import Foundation
import Intake
import Rentals
import Spool

/// Writes one line of a command's result to standard output.
///
/// - Throws: ``Failure`` with exit 74 when standard output cannot be written (closed, full
///   disk, broken pipe): a result nobody received is not a success.
func emit(_ line: String) throws {
    if let code = StandardStream.output.write(line + "\n") {
        throw Failure(IntakeError(.ioError, "cannot write the result to standard output: \(errnoDescription(code))"), json: false)
    }
}

/// Writes `line` to standard output for an operator watching (`spoolctl up`); a failed write is
/// ignored, as the program's work does not depend on anyone reading it.
func inform(_ line: String) {
    StandardStream.output.write(line + "\n")
}

/// `print` is not used in `spoolctl`: it loses write failures in stdio's buffer. Use ``emit(_:)``.
@available(*, unavailable, message: "use emit(_:), which reports a failed write")
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {}

/// Writes `value` as pretty, key-sorted JSON to standard output (see ``emit(_:)``).
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try emit(String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self))
}

/// Writes a dictionary of JSON values as pretty, key-sorted JSON to standard output (see
/// ``emit(_:)``).
func printJSONObject(_ object: Any) throws {
    try emit(jsonText(object))
}

/// A dictionary of JSON values as pretty, key-sorted JSON text.
func jsonText(_ object: Any) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
    return String(decoding: data, as: UTF8.self)
}

/// Writes `line` to standard error, prefixed `spoolctl: ` and cut to one line of at most 1000
/// characters. A failed write is ignored: the exit code still tells.
func complain(_ line: String) {
    let oneLine = line.split(whereSeparator: \.isNewline).joined(separator: " ")
    StandardStream.error.write("spoolctl: \(oneLine.count > 1000 ? oneLine.prefix(1000) + "…" : oneLine)\n")
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
            ("period", "\(from) until \(to)"), ("unit", unit.map { u in site.map { "\(u) at \(visible($0))" } ?? u } ?? "-"),
        ]
        // Sites (and reasons naming them) come from the inventory, i.e. `units import`: escaped.
        if let reason { lines.append(("reason", visible(reason))) }
        if state == .waitlisted, let waitlist { lines.append(("waiting list", visible(Self.waitlistText(waitlist, size: size, site: site, from: from)))) }
        if let price { lines.append(("price", price.summary)) }
        if let change { lines.append(("last change", visible(change.summary))) }
        if let cancelRequestedAt { lines.append(("cancel requested", cancelRequestedAt.description)) }
        lines.append(("notified", notifiedAt?.description ?? "-"))
        if attempts > 0 { lines.append(("attempts", String(attempts))) }
        if let lastError { lines.append(("last error", lastError)) }
        lines += [("submitted by", submittedByName), ("created", createdAt.description), ("updated", updatedAt.description)]
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { "\($0.0.padding(toLength: width, withPad: " ", startingAt: 0))  \($0.1)" }.joined(separator: "\n")
    }
}
