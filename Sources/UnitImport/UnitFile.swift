import Allocator
import Foundation
import Intake
import SwiftCSV

/// A file of units for `spoolctl units import`: CSV (`id,size[,site]` per line, an optional
/// header line starting with `id`) or a JSON array of `{"id", "size", "site"}`.
///
/// CSV is parsed by SwiftCSV: a UTF-8 byte order mark is dropped, LF and CRLF both end a line,
/// fields may be quoted (`"Main Street 1, rear"`). Blank lines are skipped. Each row keeps the
/// number of the line it starts on, so that every problem can be reported where it is.
public struct UnitFile: Sendable {
    /// One unit of the file, or why its line cannot be one.
    public struct Entry: Sendable {
        /// The line (CSV) or position (JSON, from 1) of the entry.
        public let line: Int
        /// The unit, if the entry has the right shape.
        public let unit: StorageUnit?
        /// Why the entry is not a unit, if it is not.
        public let problem: String?
    }

    /// The file's name as shown in messages.
    public let name: String
    /// Its bytes.
    public let data: Data

    /// A file named `name` (in messages) holding `data`.
    public init(name: String, data: Data) {
        self.name = name
        self.data = data
    }

    /// The entries and the word for their positions (`line` or `entry`).
    ///
    /// - Throws: ``IntakeError`` (65) for a JSON file that is not an array of units or a CSV file
    ///   whose quotes do not close.
    public func entries() throws(IntakeError) -> (entries: [Entry], word: String) {
        if data.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "[") { return (try jsonEntries(), "entry") }
        return (try csvEntries(), "line")
    }

    private func jsonEntries() throws(IntakeError) -> [Entry] {
        struct Item: Decodable { var id: String; var size: String; var site: String? }
        guard let items = try? JSONDecoder().decode([Item].self, from: data) else {
            throw IntakeError(.badData, "\(name) is not a JSON array of {\"id\", \"size\", \"site\"}")
        }
        return items.enumerated().map { index, item in
            Entry(line: index + 1, unit: StorageUnit(id: item.id, size: item.size.uppercased(), site: item.site ?? "main"), problem: nil)
        }
    }

    private func csvEntries() throws(IntakeError) -> [Entry] {
        let text = String(decoding: data, as: UTF8.self)
        // The parser takes a quoted field left open at the end of the file as closed there; in a
        // well-formed file quotes come in pairs (`""` inside a quoted field included).
        if text.utf8.lazy.filter({ $0 == UInt8(ascii: "\"") }).count % 2 == 1 {
            throw IntakeError(.badData, "\(name): a quoted field is not closed (an odd number of \" characters); nothing imported")
        }
        // The parser works on Characters: a quote, comma or line end followed by a combining mark
        // is one Character with it, and would silently delimit nothing.
        let delimiters = Set("\",\r\n".unicodeScalars)
        if text.contains(where: { $0 != "\r\n" && $0.unicodeScalars.count > 1 && $0.unicodeScalars.contains(where: delimiters.contains) }) {
            throw IntakeError(.badData, "\(name): a quote, comma or line end is followed by a combining character; nothing imported")
        }
        var entries: [Entry] = []
        var line = 1
        do {
            // Only the header row is parsed here; the rows come one by one below, unpadded (the
            // library's own row view pads short rows, which would hide a missing field).
            let csv = try EnumeratedCSV(string: text, delimiter: .comma, loadColumns: false, rowLimit: 0)
            try csv.enumerateAsArray(startAt: 0, rowLimit: nil) { row in
                defer { line += 1 + row.reduce(0) { $0 + $1.filter(\.isNewline).count } }
                // Whole Characters are trimmed: trimming scalars could leave a field starting with
                // a combining mark, which no CSV file can carry back.
                let fields = row.map { String($0.drop(while: \.isBlank).reversed().drop(while: \.isBlank).reversed()) }
                if fields.allSatisfy(\.isEmpty) { return }
                if line == 1 && fields[0].lowercased() == "id" { return }
                guard fields.count == 2 || fields.count == 3 else {
                    entries.append(Entry(line: line, unit: nil, problem: "expected id,size or id,size,site, found \(fields.count) field\(fields.count == 1 ? "" : "s")"))
                    return
                }
                entries.append(Entry(line: line, unit: StorageUnit(id: fields[0], size: fields[1].uppercased(), site: fields.count == 3 ? fields[2] : "main"),
                                     problem: nil))
            }
        } catch {
            throw IntakeError(.badData, "\(name):\(line): a quoted field is not closed properly; nothing imported")
        }
        return entries
    }
}

private extension Character {
    /// Whitespace that is not a line end.
    var isBlank: Bool { isWhitespace && !isNewline }
}
