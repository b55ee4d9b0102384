#if canImport(Glibc)
import Glibc
#endif
import Intake

/// Renders a notification as an RFC 5322 message (UTF-8 text body, LF line ends as Maildir
/// files use). Every header value comes from validated fields, so none can inject a header.
public enum MessageRenderer {
    /// The message for `notification`, sent from `sender` at `date` (milliseconds).
    public static func render(_ notification: CustomerNotification, sender: String, date: Int64) -> String {
        let request = notification.request
        let period = "\(request.period.start) until \(request.period.end)"
        let subject: String
        var body: [String]
        switch notification.kind {
        case .confirmation:
            subject = "Storage unit \(notification.unit ?? "?") confirmed from \(request.period.start) [request \(request.id)]"
            body = ["Your rental request \(request.id) is confirmed.", "",
                    "  Unit:    \(notification.unit ?? "?")",
                    "  Site:    \(notification.site ?? "?")",
                    "  Size:    \(request.size)",
                    "  Period:  \(period) (the last day is the day before \(request.period.end))"]
        case .rejection:
            subject = "No \(request.size) unit available from \(request.period.start) [request \(request.id)]"
            body = ["We are sorry: your rental request \(request.id) could not be fulfilled.", "",
                    "  Size:    \(request.size)",
                    "  Period:  \(period)",
                    "  Reason:  \(notification.reason ?? "no unit available")"]
            if let size = notification.alternative?.size { body.append("  Instead: a \(size) unit is free for that period") }
            if let start = notification.alternative?.earliestStart { body.append("  Instead: a \(request.size) unit is free from \(start)") }
        case .cancellation:
            subject = "Rental cancelled [request \(request.id)]"
            body = ["Your rental request \(request.id) is cancelled.", ""]
            if let unit = notification.unit { body.append("  Unit:    \(unit) (released)") }
            if let site = notification.site { body.append("  Site:    \(site)") }
            body += ["  Size:    \(request.size)", "  Period:  \(period)"]
        }
        body += ["", "Quote the request id \(request.id) in any question about it.", ""]
        let headers = [
            "From: \(sender)",
            "To: \(request.contact)",
            "Subject: \(subject)",
            "Date: \(rfc5322Date(date))",
            "Message-ID: <\(notification.eventId)@self-storage.invalid>",
            "X-Request-ID: \(request.id)",
            "X-Notification-Kind: \(notification.kind.rawValue)",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
        ]
        return (headers + [""] + body).joined(separator: "\n")
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
