import Foundation
import Intake
import Rentals
import Synchronization
import Testing
@testable import Notifier
@testable import Spool

/// Maildir delivery through the file-system seam, and the messages it writes, checked with
/// Python's `email` parser and `mailbox.Maildir`.
@Suite struct NotifierTests {
    // MARK: Maildir durability and faults

    /// Records `mkdir`, `fsync` and `link` calls by the path they act on.
    final class Recorder: Sendable {
        let log = Mutex<[String]>([])
        let paths = Mutex<[Int32: String]>([:])

        func calls(root: String) -> FileSystemCalls {
            var calls = FileSystemCalls.live
            let live = FileSystemCalls.live
            calls.open = { [self] directory, name, flags, mode throws(SystemCallError) in
                let fd = try live.open(directory, name, flags, mode)
                let parent = directory == AT_FDCWD ? "" : (paths.withLock { $0[directory] } ?? "?")
                let path = name.hasPrefix("/") ? name : parent.isEmpty ? name : parent == "/" ? "/\(name)" : "\(parent)/\(name)"
                paths.withLock { $0[fd] = path }
                return fd
            }
            calls.makeDirectory = { [self] directory, name, mode throws(SystemCallError) in
                try live.makeDirectory(directory, name, mode)
                let parent = paths.withLock { $0[directory] } ?? "?"
                log.withLock { $0.append("mkdir \(parent == "/" ? "" : parent)/\(name)") }
            }
            calls.fsync = { [self] fd throws(SystemCallError) in
                try live.fsync(fd)
                let path = paths.withLock { $0[fd] } ?? "?"
                log.withLock { $0.append("fsync \(path)") }
            }
            calls.link = { [self] a, b, c, d throws(SystemCallError) in
                try live.link(a, b, c, d)
                log.withLock { $0.append("link \(paths.withLock { $0[c] } ?? "?")/\(d)") }
            }
            return calls
        }
    }

    @Test func everyNewDirectoryIsSyncedInItsParentBeforeDeliverySucceeds() throws {
        let scratch = TemporaryDirectory("maildir")
        let root = scratch.sub("mail/root")
        let recorder = Recorder()
        let delivery = MaildirDelivery(root: root, calls: recorder.calls(root: root))
        #expect(try delivery.deliver("Subject: x\n\nbody\n", customer: "alice", eventId: "e1-confirmation"))
        let log = recorder.log.withLock { $0 }
        let created = log.filter { $0.hasPrefix("mkdir ") }.map { String($0.dropFirst(6)) }
        #expect(Set(created) == Set(["mail", "mail/root", "mail/root/alice", "mail/root/alice/tmp",
                                     "mail/root/alice/new", "mail/root/alice/cur"].map { scratch.sub($0) }))
        let linked = try #require(log.firstIndex(of: "link \(root)/alice/new/e1-confirmation"))
        for directory in created {
            let parent = String(directory[..<directory.lastIndex(of: "/")!])
            let made = try #require(log.firstIndex(of: "mkdir \(directory)"))
            let synced = log.indices.first { $0 > made && log[$0] == "fsync \(parent)" }
            #expect(synced != nil, "\(directory) is created but its parent \(parent) is never synced: \(log)")
        }
        #expect(log.last == "fsync \(root)/alice/new", "the link is synced last")
        #expect(log.lastIndex(of: "fsync \(root)/alice/new")! > linked)

        // A second delivery to the same customer in this process adds no directory syncs.
        recorder.log.withLock { $0 = [] }
        #expect(try delivery.deliver("Subject: y\n\nbody\n", customer: "alice", eventId: "e2-confirmation"))
        let syncs = recorder.log.withLock { $0 }.filter { $0.hasPrefix("fsync") }
        #expect(syncs.count == 2 && syncs.first?.hasPrefix("fsync \(root)/alice/tmp/e2-confirmation.") == true
                && syncs.last == "fsync \(root)/alice/new", "\(syncs)")
    }

    /// A failing `fsync` of a directory's parent (or of any step) fails the delivery with the
    /// injected errno in its message; the retry (new process: a fresh delivery) delivers once.
    @Test func everyFailingCallFailsTheDeliveryAndTheRetryDeliversExactlyOnce() throws {
        let injector = FaultInjector()
        func fresh() -> (TemporaryDirectory, String) {
            let scratch = TemporaryDirectory("maildir")
            return (scratch, scratch.sub("mail"))
        }
        let (_, probeRoot) = fresh()
        injector.arm()
        try MaildirDelivery(root: probeRoot, calls: FileSystemCalls.live.injecting(injector))
            .deliver("Subject: x\n\nbody\n", customer: "bob", eventId: "e-confirmation")
        let counts = injector.disarm().counts
        #expect(counts[.fsync, default: 0] >= 5 && counts[.makeDirectory, default: 0] >= 5)
        for (call, count) in counts.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where call != .close && call != .unlink && call != .status {
            for occurrence in 1...count {
                for code in [EIO, ENOSPC] {
                    let (_, root) = fresh()
                    injector.arm(failing: call, occurrence: occurrence, errno: code)
                    let label = "\(call) #\(occurrence) errno \(code)"
                    do {
                        try MaildirDelivery(root: root, calls: FileSystemCalls.live.injecting(injector))
                            .deliver("Subject: x\n\nbody\n", customer: "bob", eventId: "e-confirmation")
                        injector.disarm()
                        Issue.record("\(label): delivery reported success")
                    } catch {
                        let fired = injector.disarm().fired
                        #expect(fired, "\(label)")
                        #expect("\(error)".contains(String(cString: strerror(code))), "\(label): \(error)")
                        #expect("\(error)".contains("errno \(code)"), "\(label): \(error)")
                    }
                    #expect(filesBelow("\(root)/bob/tmp").isEmpty, "\(label): staged file left behind")
                    let retry = MaildirDelivery(root: root, calls: FileSystemCalls.live.injecting(injector))
                    let wrote = try retry.deliver("Subject: x\n\nbody\n", customer: "bob", eventId: "e-confirmation")
                    #expect(try !retry.deliver("Subject: x\n\nbody\n", customer: "bob", eventId: "e-confirmation"), "\(label)")
                    let delivered = try FileManager.default.contentsOfDirectory(atPath: "\(root)/bob/new")
                    #expect(delivered == ["e-confirmation"], "\(label): \(delivered), wrote \(wrote)")
                }
            }
        }
    }

    /// An attempt that linked the message but failed to sync `new/` leaves it in `new/`; the
    /// retry must sync `new/` before it reports "already there" (else the caller records a
    /// delivery a power failure can undo).
    @Test func retryAfterAFailedSyncOfNewSyncsItAgain() throws {
        let scratch = TemporaryDirectory("maildir")
        let root = scratch.sub("mail")
        let injector = FaultInjector()
        let calls = FileSystemCalls.live.injecting(injector)
        injector.arm()
        try MaildirDelivery(root: root, calls: calls).deliver("x\n", customer: "c", eventId: "warmup")
        let syncs = injector.disarm().counts[.fsync, default: 0]
        let delivery = MaildirDelivery(root: root, calls: calls)
        injector.arm(failing: .fsync, occurrence: syncs, errno: EIO)  // the last: new/
        #expect(throws: MaildirDelivery.Failure.self) { try delivery.deliver("x\n", customer: "c", eventId: "e-rejection") }
        #expect(injector.disarm().fired)
        injector.arm()
        #expect(try !delivery.deliver("x\n", customer: "c", eventId: "e-rejection"))
        #expect(injector.disarm().counts[.fsync, default: 0] >= 1, "the retry syncs new/ before reporting it delivered")
    }

    @Test func errorNamesTheErrnoOfTheFailedCall() throws {
        let scratch = TemporaryDirectory("maildir")
        let injector = FaultInjector()
        let delivery = MaildirDelivery(root: scratch.sub("mail"), calls: FileSystemCalls.live.injecting(injector))
        injector.arm(failing: .write, errno: ENOSPC)
        do {
            try delivery.deliver("x\n", customer: "c", eventId: "e1")
            Issue.record("delivered despite ENOSPC")
        } catch {
            #expect("\(error)".hasPrefix("maildir write tmp/e1.") && "\(error)".hasSuffix(": No space left on device (errno 28)"), "\(error)")
        }
        injector.disarm()
        // A real error, no injection: the root is a file.
        try Data().write(to: URL(fileURLWithPath: scratch.sub("file")))
        #expect(throws: MaildirDelivery.Failure.self) { try MaildirDelivery(root: scratch.sub("file/mail")).deliver("x", customer: "c", eventId: "e") }
        do { try MaildirDelivery(root: scratch.sub("file/mail")).deliver("x", customer: "c", eventId: "e") } catch {
            #expect("\(error)".contains("Not a directory (errno 20)"), "\(error)")
        }
    }

    // MARK: Messages

    static func notification(_ kind: CustomerNotification.Kind, customer: String = "alice@example.com", contact: String = "alice@example.com",
                             size: String = "L", unit: String? = "L-1", site: String? = "Site L", alternative: Alternative? = nil) -> CustomerNotification {
        let period = RentalPeriod(start: CalendarDay(iso: "2099-01-01")!, end: CalendarDay(iso: "2099-02-01")!)!
        let request = RentalRequest(id: "01JREQUEST", customer: customer, contact: contact, size: size, period: period,
                                    submittedBy: 1000, submittedByName: "alice", createdAt: 0)
        return CustomerNotification(kind: kind, request: request, unit: kind == .rejection ? nil : unit, site: kind == .rejection ? nil : site,
                                    reason: kind == .rejection ? "no \(size) unit is free" : nil, alternative: alternative, decidedAt: 0)
    }

    /// Parses each message with Python's `email` (`policy.default`) and prints a JSON summary.
    static func parse(_ messages: [String]) throws -> [[String: Any]] {
        let scratch = TemporaryDirectory("parse")
        var paths: [String] = []
        for (index, message) in messages.enumerated() {
            let path = scratch.sub("m\(index)")
            try Data(message.utf8).write(to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        let script = """
            import email, email.policy, json, sys
            out = []
            for path in sys.argv[1:]:
                with open(path, "rb") as f:
                    raw = f.read()
                m = email.message_from_bytes(raw, policy=email.policy.default)
                lines = raw.split(b"\\n\\n", 1)[0].split(b"\\n")
                out.append({
                    "keys": list(m.keys()),
                    "headers": {k: str(m[k]) for k in m.keys()},
                    "to_addresses": [a.addr_spec for a in m["To"].addresses] if m["To"] is not None else None,
                    "from_display": m["From"].addresses[0].display_name if m["From"] is not None else None,
                    "from_address": m["From"].addresses[0].addr_spec if m["From"] is not None else None,
                    "defects": [type(d).__name__ for d in m.defects] + [type(d).__name__ for k in m.keys() for d in m[k].defects],
                    "header_7bit": all(b < 128 for b in raw.split(b"\\n\\n", 1)[0]),
                    "longest_header_line": max(len(l) for l in lines),
                    "body": m.get_content(),
                    "charset": m.get_content_charset(),
                })
            print(json.dumps(out))
            """
        let result = try ChildProcessFromPath("/usr/bin/python3", ["-c", script] + paths)
        #expect(result.status == 0, "\(result.errors)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]])
    }

    @Test func phoneContactGetsNoBogusToHeader() throws {
        let phoneOnly = MessageRenderer.render(Self.notification(.confirmation, customer: "K-1042", contact: "+4915112345678"),
                                               sender: "Self Storage <noreply@localhost>", date: 0)
        let phoneWithMailCustomer = MessageRenderer.render(Self.notification(.confirmation, customer: "bob@example.com", contact: "+4915112345678"),
                                                           sender: "Self Storage <noreply@localhost>", date: 0)
        let parsed = try Self.parse([phoneOnly, phoneWithMailCustomer])
        #expect(!phoneOnly.contains("To: +49"))
        #expect(parsed[0]["headers"].flatMap { ($0 as? [String: String])?["To"] } == "undisclosed-recipients:;")
        #expect(parsed[0]["to_addresses"] as? [String] == [])
        #expect(parsed[0]["headers"].flatMap { ($0 as? [String: String])?["X-Contact-Phone"] } == "+4915112345678")
        #expect((parsed[0]["body"] as? String)?.contains("Contact: +4915112345678") == true)
        #expect(parsed[1]["to_addresses"] as? [String] == ["bob@example.com"])
        for message in parsed { #expect((message["defects"] as? [String]) == [], "\(message)") }
    }

    @Test func nonASCIIAndInjectedHeadersAreEncodedAndDecodeToTheText() throws {
        let unit = "Lager-Ü7 Großraum \u{1F4E6} " + String(repeating: "é", count: 40)
        let injected = "X-1\r\nBcc: victim@example.com\nX-Evil: yes"
        let site = "Zürich Süd\r\nBcc: site@example.com"
        let sender = "Lagerräume Müller GmbH <noreply@example.com>"
        let messages = [
            MessageRenderer.render(Self.notification(.confirmation, unit: unit, site: site), sender: sender, date: 0),
            MessageRenderer.render(Self.notification(.confirmation, unit: injected, site: site), sender: "Self Storage\r\nBcc: x@y.z <a@b.c>", date: 0),
            MessageRenderer.render(Self.notification(.confirmation, unit: "=?UTF-8?B?SGk=?= plain"), sender: "\"Storage, Inc.\" <s@example.com>", date: 0),
        ]
        let parsed = try Self.parse(messages)
        let subjects = parsed.map { ($0["headers"] as? [String: String])?["Subject"] }
        #expect(subjects[0] == "Storage unit \(unit) confirmed from 2099-01-01 [request 01JREQUEST]")
        #expect(subjects[1] == "Storage unit X-1  Bcc: victim@example.com X-Evil: yes confirmed from 2099-01-01 [request 01JREQUEST]")
        #expect(subjects[2] == "Storage unit =?UTF-8?B?SGk=?= plain confirmed from 2099-01-01 [request 01JREQUEST]")
        #expect(parsed[0]["from_display"] as? String == "Lagerräume Müller GmbH")
        #expect(parsed[0]["from_address"] as? String == "noreply@example.com")
        #expect(parsed[2]["from_display"] as? String == "Storage, Inc.")
        for message in parsed {
            let keys = Set((message["keys"] as? [String]) ?? [])
            #expect(!keys.contains("Bcc") && !keys.contains("X-Evil"), "a value added a header: \(keys)")
            #expect(message["header_7bit"] as? Bool == true)
            #expect((message["longest_header_line"] as? Int ?? 999) <= 78, "\(message)")
            #expect((message["defects"] as? [String]) == [], "\(message)")
            #expect(message["charset"] as? String == "utf-8")
            #expect((message["headers"] as? [String: String])?["MIME-Version"] == "1.0")
        }
        #expect((parsed[0]["body"] as? String)?.contains("Unit:    \(unit)") == true)
        #expect((parsed[0]["body"] as? String)?.contains("Site:    Zürich Süd  Bcc: site@example.com") == true)
    }

    @Test func veryLongBodyLinesAreQuotedPrintable() throws {
        let site = String(repeating: "Größe ", count: 300)
        let message = MessageRenderer.render(Self.notification(.confirmation, site: site), sender: "S <s@example.com>", date: 0)
        #expect(message.contains("Content-Transfer-Encoding: quoted-printable"))
        #expect(message.split(separator: "\n").allSatisfy { $0.utf8.count <= 78 })
        let parsed = try Self.parse([message])
        #expect((parsed[0]["body"] as? String)?.contains("Site:    \(site)") == true)
    }

    @Test func alternativeNeedsNoArticle() throws {
        for size in ["L", "M", "S", "XL", "5M"] {
            let message = MessageRenderer.render(Self.notification(.rejection, size: "S", alternative: Alternative(size: size, earliestStart: CalendarDay(iso: "2099-03-01"))),
                                                 sender: "S <s@example.com>", date: 0)
            #expect(message.contains("Instead: a unit of size \(size) is free for that period"))
            #expect(message.contains("Instead: a unit of size S is free from 2099-03-01"))
            #expect(!message.contains("a \(size) unit") && !message.contains("an \(size) unit"))
        }
    }
}

/// Runs an executable by path; returns status and output.
func ChildProcessFromPath(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = Pipe(), errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let errorData = Mutex<Data>(Data())
    let finished = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        errorData.withLock { $0 = errors.fileHandleForReading.readDataToEndOfFile() }
        finished.signal()
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    finished.wait()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self), String(decoding: errorData.withLock { $0 }, as: UTF8.self))
}
