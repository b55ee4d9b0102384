import Rentals

/// The waiting list's messages (``CustomerNotification/Kind/waitlisted``,
/// ``CustomerNotification/Kind/expiry``) and the first line of a promotion's confirmation.
extension MessageRenderer {
    /// Subject and body lines of a `waitlisted` or `expiry` notification; nil for other kinds.
    static func waitlistMessage(_ notification: CustomerNotification) -> (subject: String, body: [String])? {
        let request = notification.request
        let size = clean(request.size), start = request.period.start
        let site = (notification.site ?? request.site).map(clean) ?? "any site"
        let period = "\(start) until \(request.period.end) (the last day is the day before \(request.period.end))"
        switch notification.kind {
        case .waitlisted:
            var body = ["No unit of size \(size) is free for your whole rental period: your request \(request.id) is on the waiting list.", "",
                        "  Size:    \(size)",
                        "  Site:    \(site)",
                        "  Period:  \(period)"]
            if let position = notification.status?.waitlist?.position { body.append("  Place:   \(position) in the waiting list") }
            body += ["", "You will be told when a unit is assigned. The request expires on \(start) if none is."]
            return ("On the waiting list for size \(size) from \(start) [request \(request.id)]", body)
        case .expiry:
            return ("Waiting-list request expired [request \(request.id)]",
                    ["Your waiting-list request \(request.id) has expired.", "",
                     "No unit of size \(size) became free before \(start).", "",
                     "  Size:    \(size)",
                     "  Site:    \(site)",
                     "  Period:  \(period)"])
        default:
            return nil
        }
    }

    /// The first line of a confirmation that promotes a waiting request (revision above 0 of a
    /// request that asked to wait); nil for an ordinary confirmation.
    static func promotionLine(_ notification: CustomerNotification) -> String? {
        guard notification.kind == .confirmation, notification.request.waitlist, (notification.status?.revision ?? 0) > 0 else { return nil }
        return "A unit became free: your waiting-list request \(notification.request.id) is confirmed."
    }
}
