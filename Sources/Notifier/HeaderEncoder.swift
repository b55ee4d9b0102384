/// Writes RFC 5322 header fields that are 7-bit, folded, and cannot inject a header.
///
/// Control characters in a value become spaces. A value that is not printable ASCII, or that
/// contains `=?` (which a reader would take for an encoded word), is written as RFC 2047
/// encoded words in UTF-8 and base64 (`=?UTF-8?B?…?=`), each holding whole Unicode scalars;
/// otherwise as is. Lines are folded (LF, then a space) to at most 78 characters where a space
/// allows it; adjacent encoded words are separated by folding white space only, which readers
/// drop, so the value decodes to the original text.
enum HeaderEncoder {
    /// `Name: value` for an unstructured field (`Subject`).
    static func unstructured(_ name: String, _ value: String) -> String {
        let value = MessageRenderer.clean(value)
        guard needsEncoding(value) else { return fold("\(name): \(value)") }
        return "\(name): " + encodedWords(value, firstLineUsed: name.utf8.count + 2)
    }

    /// `Name: display name <address>` for a mailbox (`From`): the display name is quoted or
    /// encoded as needed; the address is written as given (after removing control characters).
    static func address(_ name: String, _ mailbox: String) -> String {
        let mailbox = MessageRenderer.clean(mailbox).trimmingSpaces
        guard mailbox.hasSuffix(">"), let open = mailbox.lastIndex(of: "<") else { return "\(name): \(mailbox)" }
        var phrase = String(mailbox[..<open]).trimmingSpaces
        let address = String(mailbox[open...])
        if phrase.count >= 2, phrase.hasPrefix("\""), phrase.hasSuffix("\"") {
            phrase = String(phrase.dropFirst().dropLast())
                .replacingAll("\\\"", with: "\"").replacingAll("\\\\", with: "\\")
        }
        if phrase.isEmpty { return "\(name): \(address)" }
        if needsEncoding(phrase) {
            let words = encodedWords(phrase, firstLineUsed: name.utf8.count + 2)
            return "\(name): \(words)\n \(address)"
        }
        let specials = Set("()<>[]:;@\\,.\"".unicodeScalars)
        if phrase.unicodeScalars.contains(where: { specials.contains($0) }) {
            phrase = "\"" + phrase.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"") + "\""
        }
        return fold("\(name): \(phrase) \(address)")
    }

    static func needsEncoding(_ value: String) -> Bool {
        value.utf8.contains { $0 < 0x20 || $0 > 0x7E } || value.contains("=?")
    }

    /// `value` as encoded words of at most 75 characters, one per line after the first.
    static func encodedWords(_ value: String, firstLineUsed: Int) -> String {
        // 39 bytes of UTF-8 are 52 base64 characters, 64 with `=?UTF-8?B?` and `?=`: a word
        // fits a continuation line (1 + 64) and the first line after a header name of up to 14.
        let limit = firstLineUsed > 14 ? 30 : 39
        var words: [String] = []
        var chunk: [UInt8] = []
        for scalar in value.unicodeScalars {
            let bytes = Array(String(scalar).utf8)
            if chunk.count + bytes.count > (words.isEmpty ? limit : 39) {
                words.append(word(chunk))
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append(word(chunk)) }
        return words.joined(separator: "\n ")
    }

    private static func word(_ bytes: [UInt8]) -> String { "=?UTF-8?B?\(Base64.encode(bytes))?=" }

    /// Folds an ASCII header line at spaces so that each line has at most 78 characters where
    /// possible (a longer word stays whole; RFC 5322 allows lines up to 998).
    static func fold(_ line: String) -> String {
        guard line.utf8.count > 78 else { return line }
        var lines: [String] = []
        var current = ""
        for (offset, word) in line.split(separator: " ", omittingEmptySubsequences: false).enumerated() {
            if offset == 0 { current = String(word); continue }
            // Break only before a non-empty word, so that no line is white space only.
            if current.utf8.count + 1 + word.utf8.count > 78, !word.isEmpty {
                lines.append(current)
                current = " " + word
            } else {
                current += " " + word
            }
        }
        lines.append(current)
        return lines.joined(separator: "\n")
    }
}

/// Base64 (RFC 4648) without line breaks.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let b0 = bytes[index], b1 = index + 1 < bytes.count ? bytes[index + 1] : 0, b2 = index + 2 < bytes.count ? bytes[index + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            out.append(index + 1 < bytes.count ? alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(index + 2 < bytes.count ? alphabet[Int(b2 & 0x3F)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Quoted-printable (RFC 2045 §6.7) for a text body with LF line ends: lines stay under 76
/// characters with soft breaks; `=`, non-ASCII and trailing white space are escaped.
enum QuotedPrintable {
    static func encode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            let bytes = Array(line.utf8)
            var out: [UInt8] = [], width = 0
            for (offset, byte) in bytes.enumerated() {
                let last = offset == bytes.count - 1
                let plain = (byte >= 0x21 && byte <= 0x7E && byte != UInt8(ascii: "=")) || (byte == 0x20 && !last)
                let token: [UInt8] = plain ? [byte] : [UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
                if width + token.count > 75 {
                    out += [UInt8(ascii: "="), UInt8(ascii: "\n")]
                    width = 0
                }
                out += token
                width += token.count
            }
            return String(decoding: out, as: UTF8.self)
        }.joined(separator: "\n")
    }
}

extension String {
    var trimmingSpaces: String {
        var scalars = Substring(self)
        while scalars.first == " " { scalars = scalars.dropFirst() }
        while scalars.last == " " { scalars = scalars.dropLast() }
        return String(scalars)
    }

    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = "", rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
