import GRDB
import Allocator
import Rentals

/// Pre-fills an allocator store with assigned rentals for `spool-bench allocator-rate`.
///
/// Deciding 50,000 requests through the service first would measure the set-up, not the row
/// (and costs hours where a decision is linear in the rentals held), so the rows are written
/// with SQL in one transaction, in the store's `rental` table as `AllocationService` writes
/// them. Then one decision checks that the allocator sees them: a request for a period every
/// unit of its size holds must be rejected; if it is not, the store's schema has moved on from
/// this pre-fill and the figure would be false, so the tool fails.
enum Prefill {
    static func assign(held: Int, units: Int, store: AllocatorStore, service: AllocationService) throws {
        guard held > 0 else { return }
        let first = CalendarDay(iso: "2030-01-01")!
        let database = try DatabaseQueue(path: store.path)
        try database.write { db in
            for index in 0..<held {
                let unit = index % units, slot = index / units
                let start = first.adding(days: slot * 31)
                var request = Tools.request(index, start: start, days: 30, size: Tools.sizes[unit % Tools.sizes.count])
                request.id = "prefill\(index)"
                var status = RentalStatus(received: request)
                status.state = .assigned
                status.unit = "U-\(unit)"
                try db.execute(sql: """
                    INSERT INTO rental (request_id, state, unit_id, start_day, end_day, status, updated_at)
                    VALUES (?, 'assigned', ?, ?, ?, ?, ?)
                    """, arguments: [request.id, "U-\(unit)", start.daysSinceEpoch, start.adding(days: 30).daysSinceEpoch,
                                     status.jsonText(), request.createdAt])
            }
        }
        guard held >= units else { return }
        let probe = Tools.request(0, start: first.adding(days: 1), days: 20, size: "S")
        guard case .rejected = try service.decide(.allocate(probe)) else {
            throw PrefillNotSeen()
        }
        _ = try service.drainOutbox()
    }

    struct PrefillNotSeen: Error, CustomStringConvertible {
        var description: String { "the allocator does not see the pre-filled rentals: update Benchmarks/spool-bench/Prefill.swift to the store's schema" }
    }
}
