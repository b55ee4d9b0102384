import Foundation
import Intake
import Rentals
import Testing
@testable import Spool

/// The circuit breaker, through the real `spoolctl` and allocator.
@Suite(.serialized) struct AdmissionTests {
    private func submit(_ system: SystemFixture, _ index: Int) throws -> (status: Int32, output: String, errors: String) {
        try system.ctl("submit", "--customer", "c\(index)", "--contact", "+4915112345678", "--size", "S",
                       "--from", "2099-01-01", "--to", "2099-01-0\(index % 8 + 2)", "--json")
    }

    @Test func breakerOpensAboveHighWaterAndClosesAfterAHalfOpenProbe() throws {
        let system = try SystemFixture(settings: ["breaker_high_water": "5", "breaker_low_water": "2", "breaker_cooldown_seconds": "1"])
        try system.addUnits([("S-1", "S")])
        // The allocator is down: submissions are accepted until the backlog reaches 5.
        for index in 0..<5 { #expect(try submit(system, index).status == 0) }
        let refused = try submit(system, 5)
        #expect(refused.status == 75)
        #expect(refused.errors.contains("retry in"))
        let object = try JSONSerialization.jsonObject(with: Data(refused.output.utf8)) as? [String: Any]
        #expect(object?["retry_after_seconds"] as? Int == 1)
        // Status and cancel are always served while it is open.
        #expect(try system.ctl("list").status == 0)
        #expect(try system.ctl("queues").output.contains("breaker: open"))

        try system.startBoth()
        #expect(try system.eventually { try Spool(path: system.spool).queue(.allocation).counts() == QueueCounts() })
        usleep(1_100_000)
        // The cooldown is over and the backlog below the low-water mark: the probe closes it.
        #expect(try submit(system, 6).status == 0)
        #expect(try submit(system, 7).status == 0)
    }

    @Test func breakerOpensWhenTheAllocatorKeepsFailing() throws {
        let system = try SystemFixture(settings: ["breaker_failure_threshold": "3", "breaker_cooldown_seconds": "60"])
        let spool = try Spool(path: system.spool, create: true)
        let records = try RecordDirectory(spool: spool, path: "state")
        var health = AllocatorHealth()
        health.consecutiveFailures = 3
        health.lastError = "database is locked"
        try records.write(AllocatorHealth.recordName, canonicalJSON(health))
        let refused = try submit(system, 1)
        #expect(refused.status == 75)
        #expect(refused.errors.contains("keeps failing"))
        #expect(try spool.queue(.allocation).counts() == QueueCounts(), "nothing written when refused")
    }
}
