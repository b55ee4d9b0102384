import Rentals

extension MessageRenderer {
    /// Subject and body lines of an `extension`, `extension-refused` or `end` message, from the
    /// decided status the notification carries (its `change`, period and price); the request
    /// alone when an older notification carries none.
    static func changeText(_ notification: CustomerNotification) -> (subject: String, body: [String]) {
        let request = notification.request
        let status = notification.status
        let to = status?.to ?? request.period.end, from = status?.from ?? request.period.start
        let change = status?.change
        let unit = clean(notification.unit ?? status?.unit ?? "?"), site = clean(notification.site ?? status?.site ?? "?")
        let size = clean(request.size)
        let period = "  Period:  \(from) until \(to) (the last day is the day before \(to))"
        switch notification.kind {
        case .extension:
            var body = ["Your rental \(request.id) is extended until \(to).", "",
                        "  Unit:    \(unit)", "  Site:    \(site)", "  Size:    \(size)", period]
            if let price = status?.price, let line = price.lines.last, line.to == to {
                body.append("  Added:   \(line.from) until \(line.to): \(money(line.amountMinor, price.currency)) at \(money(line.monthlyRateMinor, price.currency)) per month")
                body.append("  Total:   \(money(price.totalMinor, price.currency))")
            }
            return ("Rental extended until \(to) [request \(request.id)]", body)
        case .end:
            var body = ["Your rental \(request.id) now ends on \(to): the unit is released from that day.", "",
                        "  Unit:    \(unit) (released from \(to))", "  Site:    \(site)", "  Size:    \(size)", period]
            if let price = status?.price { body.append("  Total:   \(money(price.totalMinor, price.currency))") }
            return ("Rental ends on \(to) [request \(request.id)]", body)
        default:  // .extensionRefused: a refused extend, or a refused end
            let ending = change?.kind == .end
            let asked = change.map { ending ? "to end rental \(request.id) on \($0.day)" : "to extend rental \(request.id) until \($0.day)" }
                ?? "to change rental \(request.id)"
            let body = ["Your request \(asked) was refused.", "",
                        "  Reason:  \(clean(change?.reason ?? "the change could not be made"))",
                        "  Size:    \(size)", "",
                        "Your rental is unchanged: unit \(unit) until \(to) (the last day is the day before \(to))."]
            return ("\(ending ? "Rental end not changed" : "Rental not extended") [request \(request.id)]", body)
        }
    }

    /// `EUR 79.00`.
    static func money(_ minor: Int64, _ currency: String) -> String {
        clean(Currency.format(Money(minor: minor, currency: currency)))
    }
}
