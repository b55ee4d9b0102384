import GRDB
import Rentals

extension PriceBook.Quote {
    /// The price, nil unless priced.
    public var price: RentalPrice? {
        if case .priced(let price) = self { return price }
        return nil
    }
}

extension AllocationService {
    /// The confirmation of the assignment `status` (revision 0). Unpriced, it is today's
    /// notification byte for byte (the notifier rebuilds the status from the request); priced,
    /// it carries the decided `status`, so that the notifier keeps its `price` in the status it
    /// journals after delivery and the message states the rate and total.
    static func confirmation(_ status: RentalStatus, request: RentalRequest, decidedAt: Int64) -> CustomerNotification {
        var notification = CustomerNotification(kind: .confirmation, request: request, unit: status.unit, site: status.site, decidedAt: decidedAt)
        if status.price != nil { notification.status = status }
        return notification
    }

    /// Rejects `request` because a rate is in force but the period's price does not fit in 64
    /// bits (a rate written around `spoolctl prices set`'s limit): a unit is free, yet no price
    /// could be agreed, so nothing is booked. The customer is told the reason; an operator
    /// corrects the rate. Never a trap, never an unpriced booking at a priced site.
    func refuseUnpriceable(_ request: RentalRequest, status decided: RentalStatus, reason: String, now: Int64, _ db: Database) throws -> Decision {
        var status = decided
        status.state = .rejected
        status.reason = reason
        logger.error("booking refused: cannot price it", metadata: ["request": "\(request.id)", "reason": "\(reason)"])
        try insertRental(request, unit: nil, status: status, now: now, db)
        try enqueueOutbox(status, CustomerNotification(kind: .rejection, request: request, reason: reason, decidedAt: now), db)
        return .rejected(reason: reason)
    }
}
