import Foundation
import Rentals
import Spool

/// `allocator-bench history --spool DIR [--requests N] [--days D]`: journals the life of N
/// requests as the system would (issue 10's space figure, scripts/space-figure): every request
/// `received`, then `assigned` and `confirmed` (notified), and then one of: `completed` at the
/// end of its rental (70 %), `cancelled` by the customer and notified (10 %), still running
/// (10 %); the other 10 % are `rejected` and notified. Requests are spread evenly over the last
/// D days (default 365), oldest first, so that retention has old finished requests to drop. The
/// events are the real status documents (`RentalStatus.indexEvent()`), appended in groups of
/// 500 with the default 4 MiB segments, as the daemons' group commits do.
@MainActor func history() throws {
    guard let path = option("--spool") else { throw CocoaError(.fileNoSuchFile) }
    let total = Int(option("--requests") ?? "") ?? 100_000
    let days = Int64(option("--days") ?? "") ?? 365
    let spool = try Spool(path: path, create: true)
    let journal = try Journal(spool: spool)
    var random = SystemRandomNumberGenerator()
    let now = Clock.nowMilliseconds()
    let span = days * 86_400_000
    var pending: [[UInt8]] = []
    func record(_ status: RentalStatus) throws {
        pending.append(status.indexEvent().encoded())
        if pending.count >= 500 {
            try journal.append(pending, durability: .durable)
            pending.removeAll(keepingCapacity: true)
        }
    }
    for index in 0..<total {
        let created = now - span + span * Int64(index) / Int64(max(total, 1))
        let start = CalendarDay(daysSinceEpoch: Int(created / 86_400_000) + Int.random(in: 1...30, using: &random))
        let end = start.adding(days: Int.random(in: 7...60, using: &random))
        let request = RentalRequest(id: ItemID.generate().rawValue, customer: "customer\(index % 5_000)@example.com",
                                    contact: "customer\(index % 5_000)@example.com", size: ["S", "M", "L", "XL"][index % 4],
                                    period: RentalPeriod(start: start, end: end)!, submittedBy: 1000, submittedByName: "alice",
                                    createdAt: created)
        var status = RentalStatus(received: request)
        try record(status)
        func step(_ state: RentalState, _ number: Int64, after milliseconds: Int64, notified: Bool) throws {
            status.state = state
            status.version = RentalStatus.version(step: number)
            status.updatedAt = Timestamp(milliseconds: min(now, status.updatedAt.milliseconds + milliseconds))
            status.notifiedAt = notified ? status.updatedAt : nil
            try record(status)
        }
        if index % 10 == 0 {
            status.reason = "no unit of size \(request.size) is free for the whole period"
            try step(.rejected, 2, after: 50, notified: false)
            try step(.rejected, 3, after: 1_000, notified: true)
            continue
        }
        status.unit = "U\(index % 400)"
        status.site = "Main street"
        try step(.assigned, 2, after: 50, notified: false)
        try step(.confirmed, 3, after: 1_000, notified: true)
        switch index % 10 {
        case 1: try step(.cancelled, 4, after: 86_400_000, notified: true)
        case 2: break  // still running
        default:
            let ends = Int64(end.daysSinceEpoch) * 86_400_000
            try step(.completed, 5, after: max(0, ends - status.updatedAt.milliseconds), notified: false)
        }
    }
    if !pending.isEmpty { try journal.append(pending, durability: .durable) }
    print("history: \(total) requests journaled in \(path) over \(days) days")
}
