import Foundation
import Testing
@testable import Spool

/// A SIGTERM is never lost, whenever it arrives: the daemon stops (exit 0, or killed by it if
/// it arrived before the daemon took the signal over), within a bound, every time.
@Suite(.serialized) struct StopSignalTests {
    @Test func sigtermAtAnyMomentOfStartUpStopsTheDaemon() throws {
        let system = try SystemFixture()
        try system.addUnits([("T-1", "S")])
        for round in 0..<24 {
            let daemon = try ChildProcess(round % 2 == 0 ? "spool-allocator" : "spool-notifier", [], environment: system.environment)
            usleep(UInt32(round % 8) * 15_000)  // 0 to 105 ms: before, during and after start-up
            kill(daemon.process.processIdentifier, SIGTERM)
            let deadline = ContinuousClock.now + .seconds(20)
            while daemon.process.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
            let stopped = !daemon.process.isRunning
            if !stopped { kill(daemon.process.processIdentifier, SIGKILL) }
            let result = daemon.finish()
            #expect(stopped, "round \(round): the daemon ignored a SIGTERM sent during start-up")
            let byTerm = daemon.process.terminationReason == .uncaughtSignal && result.status == SIGTERM
            #expect(stopped && (result.status == 0 || byTerm), "round \(round): \(result.status) \(result.errors.suffix(300))")
        }
    }
}
