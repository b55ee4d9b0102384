import Foundation
import Intake
import Rentals
import Testing
@testable import Notifier
@testable import Spool

/// Notification hooks in other languages.
@Suite(.serialized) struct HookTests {
    @Test func pythonHookGetsTheEventAsJSON() throws {
        let scratch = TemporaryDirectory("hook")
        let script = scratch.sub("hook.py")
        try Data("""
            import json, os, sys
            event = json.load(sys.stdin)
            assert event["event_id"] == os.environ["SPOOL_EVENT_ID"]
            with open(os.path.join(sys.argv[1], os.environ["SPOOL_EVENT_ID"] + ".json"), "w") as f:
                json.dump(event, f)

            """.utf8).write(to: URL(fileURLWithPath: script))
        let system = try SystemFixture(settings: ["notify_hook": "python3 \(script) \(scratch.path)"])
        try system.addUnits([("P-1", "M")])
        try system.startBoth()
        let id = try system.submit(size: "M", from: "2099-03-01", to: "2099-04-01")
        _ = try system.waitFor(id, .confirmed)
        let written = try Data(contentsOf: URL(fileURLWithPath: scratch.sub("\(id)-confirmation.json")))
        let event = try JSONSerialization.jsonObject(with: written) as? [String: Any]
        #expect(event?["kind"] as? String == "confirmation")
        #expect(event?["unit"] as? String == "P-1")
        #expect((event?["request"] as? [String: Any])?["id"] as? String == id)
    }

    @Test func failingShellHookIsRetriedWithBackoffThenSucceeds() throws {
        let scratch = TemporaryDirectory("hook")
        let script = scratch.sub("hook.sh")
        // Fails on the first call for each event, succeeds on the second.
        try Data("""
            #!/bin/sh
            marker="$1/$SPOOL_EVENT_ID.tried"
            cat > /dev/null
            if [ ! -e "$marker" ]; then touch "$marker"; echo "sms gateway unreachable" >&2; exit 1; fi
            echo "$SPOOL_REQUEST_ID $SPOOL_NOTIFICATION_KIND" >> "$1/delivered.log"

            """.utf8).write(to: URL(fileURLWithPath: script))
        chmod(script, 0o755)
        let system = try SystemFixture(settings: ["notify_hook": "\(script) \(scratch.path)"])
        try system.addUnits([("Q-1", "S")])
        try system.startBoth()
        let id = try system.submit(size: "S", from: "2099-03-01", to: "2099-04-01")
        // The failed attempt shows in the status, with the hook's message.
        #expect(system.eventually { (try? system.status(id))?.lastError?.contains("sms gateway unreachable") == true })
        let confirmed = try system.waitFor(id, .confirmed, seconds: 30)
        #expect(confirmed.lastError == nil)
        let log = try String(contentsOfFile: scratch.sub("delivered.log"), encoding: .utf8)
        #expect(log == "\(id) confirmation\n", "delivered exactly once")
    }

    @Test func hookThatAlwaysFailsEndsInTheDeadLetters() throws {
        let system = try SystemFixture(settings: ["notify_hook": "exit 3", "max_attempts": "1"])
        try system.addUnits([("R-1", "S")])
        try system.startBoth()
        let id = try system.submit(size: "S", from: "2099-03-01", to: "2099-04-01")
        #expect(try system.eventually { try Spool(path: system.spool).queue(.notifications).counts().dead == 1 })
        let dead = try system.ctl("dead", "list", "--queue", "notifications")
        #expect(dead.output.contains("\(id)-confirmation"))
        #expect(dead.output.contains("hook exited with 3"))
        #expect(try system.status(id).state == .assigned, "assigned, but the customer was not notified")
    }

    // MARK: Hostile hooks (the delivery itself, without daemons)

    /// Whether `pid` is gone (or a zombie nobody reaps yet).
    private func isGone(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
    }

    private func grandchild(_ file: String) throws -> Int32 {
        try #require(Int32(String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    private func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline { if condition() { return true }; usleep(20_000) }
        return condition()
    }

    /// Never reads stdin, writes 5 MB to stderr, ignores SIGTERM, leaves a grandchild (which
    /// ignores SIGTERM too) holding stderr, and sleeps: the delivery fails as timed out within
    /// the timeout plus the grace, and no process of the hook is left.
    @Test func hookThatIgnoresTermFloodsStderrAndLeavesAGrandchildTimesOut() throws {
        let scratch = TemporaryDirectory("hook")
        let pidFile = scratch.sub("pid")
        let command = "trap '' TERM; sleep 60 & echo $! > \(pidFile); head -c 5000000 /dev/zero | tr '\\0' x >&2; echo flooded >&2; sleep 60"
        let hook = HookDelivery(command: command, timeout: .seconds(1))
        let started = ContinuousClock.now
        let error = #expect(throws: HookDelivery.Failure.self) { try hook.deliver(NotifierTests.notification(.confirmation)) }
        #expect(error?.description.hasPrefix("hook timed out after 1") == true, "\(String(describing: error))")
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .milliseconds(4_500), "took \(elapsed): timeout 1 s plus a grace of 2 s")
        let pid = try grandchild(pidFile)
        #expect(eventually(5) { isGone(pid) }, "the grandchild \(pid) outlived the hook")
    }

    /// Exits 0 at once but leaves a grandchild holding stderr open: delivered without waiting
    /// for it, and the grandchild does not outlive the hook.
    @Test func grandchildHoldingThePipeDoesNotDelayADeliveredHook() throws {
        let scratch = TemporaryDirectory("hook")
        let pidFile = scratch.sub("pid")
        let hook = HookDelivery(command: "sleep 60 & echo $! > \(pidFile); exit 0", timeout: .seconds(30))
        let started = ContinuousClock.now
        try hook.deliver(NotifierTests.notification(.confirmation))
        #expect(ContinuousClock.now - started < .seconds(2))
        let pid = try grandchild(pidFile)
        #expect(eventually(5) { isGone(pid) }, "the grandchild \(pid) outlived the hook")

        // A failing hook that never reads its input reports its last stderr line and status.
        let failing = HookDelivery(command: "head -c 3000000 /dev/zero >&2; echo 'gateway said no' >&2; exit 4", timeout: .seconds(30))
        let error = #expect(throws: HookDelivery.Failure.self) { try failing.deliver(NotifierTests.notification(.rejection)) }
        #expect(error?.description == "hook exited with 4: gateway said no")
    }
}
