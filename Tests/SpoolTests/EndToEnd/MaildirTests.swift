import Foundation
import Intake
import Rentals
import Testing
@testable import Spool

/// The notifier daemon writes Maildirs that a standard reader (Python's `mailbox.Maildir`)
/// reads: one message per outcome, headers that decode to the text, no debris in `tmp/`.
@Suite(.serialized) struct MaildirTests {
    @Test func notifierDeliversOneReadableMessagePerOutcome() throws {
        let system = try SystemFixture(settings: ["sender": "Lagerräume Süd <noreply@example.com>"])
        let added = try system.ctl("units", "add", "UE-1", "--size", "L", "--site", "Zürich Süd")
        #expect(added.status == 0, "\(added.errors)")
        try system.startBoth()
        func submit(_ from: String, _ to: String) throws -> String {
            let result = try system.ctl(["submit", "--customer", "K-1042", "--contact", "+4915112345678", "--size", "L",
                                         "--from", from, "--to", to, "--json"])
            #expect(result.status == 0, "\(result.errors)")
            let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
            return try #require(object?["id"] as? String)
        }
        let confirmed = try submit("2099-01-01", "2099-02-01")
        _ = try system.waitFor(confirmed, .confirmed)
        let rejected = try submit("2099-01-10", "2099-01-20")
        _ = try system.waitFor(rejected, .rejected)
        #expect(try system.ctl("cancel", confirmed).status == 0)
        _ = try system.waitFor(confirmed, .cancelled)
        // Settled: every status notified and every queue item acknowledged.
        let spool = try Spool(path: system.spool)
        #expect(try system.eventually {
            try system.status(confirmed).notifiedAt != nil && system.status(rejected).notifiedAt != nil
                && spool.queue(.notifications).counts() == QueueCounts() && spool.queue(.allocation).counts() == QueueCounts()
        })

        let script = """
            import email.policy, json, mailbox, os, sys
            box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
            out = []
            for key in sorted(box.keys()):
                m = box.get_message(key)
                raw = box.get_bytes(key)
                parsed = email.message_from_bytes(raw, policy=email.policy.default)
                out.append({"key": key, "kind": parsed["X-Notification-Kind"], "subject": str(parsed["Subject"]),
                            "to": str(parsed["To"]), "from": parsed["From"].addresses[0].display_name,
                            "phone": parsed["X-Contact-Phone"], "body": parsed.get_content(),
                            "subdir": m.get_subdir(), "defects": len(parsed.defects)})
            print(json.dumps({"messages": out, "tmp": os.listdir(os.path.join(sys.argv[1], "tmp"))}))
            """
        let result = try ChildProcessFromPath("/usr/bin/python3", ["-c", script, "\(system.spool)/maildir/K-1042"])
        #expect(result.status == 0, "\(result.errors)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        let messages = try #require(summary["messages"] as? [[String: Any]])
        #expect((summary["tmp"] as? [String]) == [])
        #expect(messages.map { $0["key"] as? String } == ["\(confirmed)-cancellation", "\(confirmed)-confirmation", "\(rejected)-rejection"].sorted())
        #expect(Set(messages.compactMap { $0["kind"] as? String }) == ["confirmation", "rejection", "cancellation"])
        for message in messages {
            #expect(message["to"] as? String == "undisclosed-recipients:;")
            #expect(message["phone"] as? String == "+4915112345678")
            #expect(message["from"] as? String == "Lagerräume Süd")
            #expect(message["subdir"] as? String == "new")
            #expect(message["defects"] as? Int == 0)
        }
        let confirmation = try #require(messages.first { $0["kind"] as? String == "confirmation" })
        #expect(confirmation["subject"] as? String == "Storage unit UE-1 confirmed from 2099-01-01 [request \(confirmed)]")
        #expect((confirmation["body"] as? String)?.contains("Site:    Zürich Süd") == true)
    }
}
