#if canImport(Glibc)
import Glibc
#endif
import Rentals

/// Renders a notification as an RFC 5322 message with LF line ends, as Maildir files use.
///
/// - Headers are 7-bit: a value with non-ASCII text (a sender's display name, a unit id in the
///   subject) is written as RFC 2047 encoded words (`=?UTF-8?B?…?=`), folded to lines of at most
///   78 characters. No value can add a header: control characters (CR, LF, TAB, …) in a value are
///   replaced by spaces before it is written.
/// - `To:` is an address or nothing: the contact if it is an e-mail address, else the customer
///   if that is one, else `undisclosed-recipients:;`. A phone contact is named in
///   `X-Contact-Phone:` and in the body, for the hook or an operator to text.
/// - The body is UTF-8 text (`MIME-Version: 1.0`, `text/plain; charset=utf-8`), `8bit`, or
///   `quoted-printable` if a line would exceed what `8bit` allows.
public enum MessageRenderer {
    /// The message for `notification`, sent from `sender` at `date` (milliseconds).
    public static func render(_ notification: CustomerNotification, sender: String, date: Int64) -> String {
        let request = notification.request
        let period = "\(request.period.start) until \(request.period.end)"
        let unit = clean(notification.unit ?? "?"), site = clean(notification.site ?? "?"), size = clean(request.size)
        let phone = isPhone(request.contact) ? request.contact : nil
        let subject: String
        var body: [String]
        switch notification.kind {
        case .confirmation:
            subject = "Storage unit \(unit) confirmed from \(request.period.start) [request \(request.id)]"
            body = [promotionLine(notification) ?? "Your rental request \(request.id) is confirmed.", "",
                    "  Unit:    \(unit)",
                    "  Site:    \(site)",
                    "  Size:    \(size)",
                    "  Period:  \(period) (the last day is the day before \(request.period.end))"]
            body += priceLines(notification.status?.price)
        case .rejection:
            subject = "No unit of size \(size) available from \(request.period.start) [request \(request.id)]"
            body = ["We are sorry: your rental request \(request.id) could not be fulfilled.", "",
                    "  Size:    \(size)",
                    "  Period:  \(period)",
                    "  Reason:  \(clean(notification.reason ?? "no unit available"))"]
            // Size names are configurable ("L", "XL", "5M"): no article to agree with them.
            if let other = notification.alternative?.size { body.append("  Instead: a unit of size \(clean(other)) is free for that period") }
            if let start = notification.alternative?.earliestStart { body.append("  Instead: a unit of size \(size) is free from \(start)") }
        case .cancellation:
            subject = "Rental cancelled [request \(request.id)]"
            body = ["Your rental request \(request.id) is cancelled.", ""]
            if let unit = notification.unit { body.append("  Unit:    \(clean(unit)) (released)") }
            if let site = notification.site { body.append("  Site:    \(clean(site))") }
            body += ["  Size:    \(size)", "  Period:  \(period)"]
        case .waitlisted, .expiry:
            (subject, body) = waitlistMessage(notification)!
        case .extension, .extensionRefused, .end:
            (subject, body) = changeText(notification)
        }
        if let phone { body.append("  Contact: \(phone)") }
        body += ["", "Quote the request id \(request.id) in any question about it.", ""]
        var headers = [
            HeaderEncoder.address("From", sender),
            "To: \(recipient(request))",
            HeaderEncoder.unstructured("Subject", subject),
            "Date: \(rfc5322Date(date))",
            HeaderEncoder.unstructured("Message-ID", "<\(clean(notification.eventId))@self-storage.invalid>"),
            HeaderEncoder.unstructured("X-Request-ID", request.id),
            "X-Notification-Kind: \(notification.kind.rawValue)",
        ]
        if let phone { headers.append("X-Contact-Phone: \(phone)") }
        headers += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
        let text = body.joined(separator: "\n")
        if body.allSatisfy({ $0.utf8.count <= 900 }) {
            headers.append("Content-Transfer-Encoding: 8bit")
            return (headers + [""]).joined(separator: "\n") + "\n" + text
        }
        headers.append("Content-Transfer-Encoding: quoted-printable")
        return (headers + [""]).joined(separator: "\n") + "\n" + QuotedPrintable.encode(text)
    }

    /// The `To:` value: an RFC 5322 address or the empty group.
    static func recipient(_ request: RentalRequest) -> String {
        if isAddress(request.contact) { return request.contact }
        if isAddress(request.customer) { return request.customer }
        return "undisclosed-recipients:;"
    }

    /// A plain `local@domain` address (ASCII, no specials, no spaces): safe to write bare.
    static func isAddress(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), text.utf8.count <= 254 else { return false }
        return text.utf8.allSatisfy { byte in
            (0x21...0x7E).contains(byte) && !Array("()<>[]:;,\\\"".utf8).contains(byte)
        } && !parts[1].hasPrefix(".") && !parts[1].hasSuffix(".") && !parts[0].hasPrefix(".") && !parts[0].hasSuffix(".")
    }

    static func isPhone(_ text: String) -> Bool {
        text.hasPrefix("+") && text.utf8.count > 1 && text.utf8.dropFirst().allSatisfy { (0x30...0x39).contains($0) }
    }

    /// `text` with every control character (CR, LF, TAB, DEL, C1) replaced by a space.
    static func clean(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029 ? " " : scalar
        }))
    }

    /// `Thu, 26 Nov 2026 11:30:00 +0000`.
    static func rfc5322Date(_ milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S +0000", &parts)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
