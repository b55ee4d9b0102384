import Foundation
import Intake
import Testing
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
}
