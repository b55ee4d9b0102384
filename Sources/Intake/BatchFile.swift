import Foundation
import Rentals
#if canImport(Glibc)
import Glibc
#endif

/// The input of `spoolctl submit --batch FILE`: JSON lines, one rental request per line.
///
/// A line is a JSON object with the fields of a single submit: `customer`, `contact`, `size`,
/// `from` (strings), `to` (a string) or `months` (an integer), and optionally
/// `idempotency_key`, `site` (a string: only units there) and `waitlist` (true or false: wait
/// for a unit instead of a rejection). Any other field is refused (a misspelt `to` must not become a default, and
/// no line can name who submitted it: that is always the caller). Lines end with LF or CRLF; the
/// last line needs no newline; a line that is empty or only blanks is skipped (its number still
/// counts). Line numbers start at 1.
///
/// Limits, checked before anything is written: at most ``maxLines`` lines and ``maxBytes``
/// bytes; beyond either the whole batch is refused (exit 65) and nothing is queued. A file with
/// no request at all is a usage error (exit 64): an empty batch is more likely a mistake (the
/// wrong file, an empty pipe) than a wish.
public enum BatchFile {
    /// Most lines in one batch (blank ones included).
    public static let maxLines = 10_000
    /// Most bytes in one batch.
    public static let maxBytes = 4 << 20

    /// One request line: its number and its form, or why it cannot be read.
    public struct Line: Sendable, Equatable {
        /// The line number (1-based).
        public let number: Int
        /// The form, or the line's one-line error.
        public let form: Result<RentalForm, IntakeError>
    }

    /// The request lines of `bytes`.
    ///
    /// - Throws: ``IntakeError``: 65 over the limits, 64 when there is no request line.
    public static func parse(_ bytes: [UInt8]) throws(IntakeError) -> [Line] {
        guard bytes.count <= maxBytes else {
            throw IntakeError(.badData, "the batch is larger than \(maxBytes >> 20) MiB; nothing was queued: split it")
        }
        var lines: [Line] = []
        var number = 0
        var start = 0
        let decoder = JSONDecoder()
        while start < bytes.count {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
            number += 1
            guard number <= maxLines else {
                throw IntakeError(.badData, "the batch has more than \(maxLines) lines; nothing was queued: split it")
            }
            var last = end
            if last > start, bytes[last - 1] == UInt8(ascii: "\r") { last -= 1 }
            let text = bytes[start..<last]
            start = end + 1
            if text.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            lines.append(Line(number: number, form: form(of: text, decoder)))
        }
        guard !lines.isEmpty else { throw IntakeError(.usage, "the batch holds no request (every line is empty); nothing was queued") }
        return lines
    }

    private static func form(of text: ArraySlice<UInt8>, _ decoder: JSONDecoder) -> Result<RentalForm, IntakeError> {
        do {
            return .success(try decoder.decode(LineFields.self, from: Data(text)).form)
        } catch let problem as LineProblem {
            return .failure(IntakeError(problem.code, problem.message))
        } catch {
            return .failure(IntakeError(.badData, "not a JSON object with the request's fields (customer, contact, size, from, to or months, idempotency_key)"))
        }
    }

    /// Reads a batch: standard input for `-`, else the file at `path` opened with the REAL
    /// user's rights (see ``Caller/readFileAsRealUser(_:limit:)``: `spoolctl` is setgid, and a
    /// caller must not make it read a file of the spool group's), at most ``maxBytes`` + 1 bytes.
    ///
    /// - Throws: ``IntakeError``: 66 when the file cannot be opened or read (the message says
    ///   why: `errno`), 65 when it is over ``maxBytes``.
    public static func read(_ path: String) throws(IntakeError) -> [UInt8] {
        let fd: Int32
        if path == "-" {
            fd = STDIN_FILENO
        } else {
            let effective = getegid(), real = getgid()
            let switched = effective != real && setegid(real) == 0
            // O_NONBLOCK: a FIFO nobody writes to must not block the open (it reads as empty).
            let opened = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
            let openError = errno
            if switched, setegid(effective) != 0 { _exit(71) }  // never go on with the wrong rights
            guard opened >= 0 else { throw IntakeError(.noInput, "cannot open \(path.echoed): \(String(cString: strerror(openError)))") }
            _ = fcntl(opened, F_SETFL, fcntl(opened, F_GETFL) & ~O_NONBLOCK)  // then read as usual
            fd = opened
        }
        defer { if fd != STDIN_FILENO { close(fd) } }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw IntakeError(.noInput, "cannot read \(path == "-" ? "standard input" : path.echoed): \(String(cString: strerror(errno)))")
            }
            if count == 0 { return bytes }
            bytes += buffer[..<count]
            if bytes.count > maxBytes {
                throw IntakeError(.badData, "the batch is larger than \(maxBytes >> 20) MiB; nothing was queued: split it")
            }
        }
    }
}

/// A line's problem, with the code it would have as a single submit (64: the options are
/// misused, 65: a value is wrong).
private struct LineProblem: Error {
    let code: IntakeError.Code
    let message: String
}

/// The fields of one line, decoded strictly (see ``BatchFile``).
private struct LineFields: Decodable {
    let form: RentalForm

    struct Key: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static let known = ["customer", "contact", "size", "from", "to", "months", "idempotency_key", "site", "waitlist"]

    init(from decoder: any Decoder) throws {
        let container: KeyedDecodingContainer<Key>
        do { container = try decoder.container(keyedBy: Key.self) } catch {
            throw LineProblem(code: .badData, message: "not a JSON object: each line is one request, {\"customer\": …, \"contact\": …, …}")
        }
        for key in container.allKeys where !Self.known.contains(key.stringValue) {
            throw LineProblem(code: .badData, message: "unknown field \(key.stringValue.echoed); the fields are \(Self.known.joined(separator: ", "))")
        }
        func text(_ name: String, required: Bool) throws -> String? {
            let key = Key(stringValue: name)
            guard container.contains(key), !(try container.decodeNil(forKey: key)) else {
                if required { throw LineProblem(code: .usage, message: "missing field \(name)") }
                return nil
            }
            guard let value = try? container.decode(String.self, forKey: key) else {
                throw LineProblem(code: .badData, message: "field \(name) must be a string")
            }
            return value
        }
        var months: Int?
        let monthsKey = Key(stringValue: "months")
        if container.contains(monthsKey), !(try container.decodeNil(forKey: monthsKey)) {
            guard let value = try? container.decode(Int.self, forKey: monthsKey) else {
                throw LineProblem(code: .badData, message: "field months must be a whole number")
            }
            months = value
        }
        var waitlist = false
        let waitlistKey = Key(stringValue: "waitlist")
        if container.contains(waitlistKey), !(try container.decodeNil(forKey: waitlistKey)) {
            guard let value = try? container.decode(Bool.self, forKey: waitlistKey) else {
                throw LineProblem(code: .badData, message: "field waitlist must be true or false")
            }
            waitlist = value
        }
        form = RentalForm(customer: try text("customer", required: true)!, contact: try text("contact", required: true)!,
                          size: try text("size", required: true)!, from: try text("from", required: true)!,
                          to: try text("to", required: false), months: months,
                          idempotencyKey: try text("idempotency_key", required: false),
                          site: try text("site", required: false), waitlist: waitlist)
    }
}
