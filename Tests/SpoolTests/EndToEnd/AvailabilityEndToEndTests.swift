import Foundation
import GRDB
import Rentals
import Testing
@testable import Allocator
@testable import Spool

/// `spoolctl availability` end to end: the real `spoolctl` and `spool-allocator`, answers equal
/// an independent count over the allocator's store, a reader inside its read transaction does
/// not hold the allocator up, an ordinary user of the setgid `spoolctl` gets the same answer and
/// writes nothing, and bad input and output failures exit with the documented codes.
@Suite(.serialized) struct AvailabilityEndToEndTests {
    static let sites = ["main", "north"]

    /// The `--json` answer, parsed.
    static func answer(_ output: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "not a JSON object: \(output)")
    }

    /// `free` per site of a parsed answer.
    static func freeBySite(_ answer: [String: Any]) -> [String: Int] {
        var result: [String: Int] = [:]
        for site in answer["sites"] as? [[String: Any]] ?? [] { result[site["site"] as? String ?? "?"] = site["free"] as? Int }
        return result
    }

    @Test func availabilityAnswersFromTheStoreWithoutBlockingTheAllocator() throws {
        let system = try SystemFixture(settings: ["currency": "EUR"])
        for (index, site) in (Self.sites + Self.sites + Self.sites).enumerated() {
            #expect(try system.ctl("units", "add", "M-\(index)", "--size", "M", "--site", site).status == 0)
        }
        for index in 0..<2 { #expect(try system.ctl("units", "add", "S-\(index)", "--size", "S", "--site", "main").status == 0) }
        let storePath = "\(system.spool)/allocator/state.sqlite"
        try DatabaseQueue(path: storePath).write { db in try PriceBook.set(size: "M", site: nil, monthlyMinor: 7900, currency: "EUR", by: "test", now: 0, db) }
        try system.start("spool-allocator")

        // A reader inside its read transaction for the whole run of 20 decisions.
        let reader = try StoreReader(spool: Spool(path: system.spool))
        let inside = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let held = Handoff<[Int]>()
        let thread = Thread {
            held.set(try? reader.read { db in
                let before = try Int.fetchOne(db, sql: "SELECT count(*) FROM rental WHERE state = 'assigned'") ?? -1
                inside.signal()
                release.wait()
                return [before, try Int.fetchOne(db, sql: "SELECT count(*) FROM rental WHERE state = 'assigned'") ?? -1]
            })
        }
        thread.start()
        inside.wait()
        var random = SeededGenerator(seed: 11)
        for index in 0..<20 {
            let start = CalendarDay(iso: "2099-01-01")!.adding(days: Int.random(in: 0...60, using: &random))
            let end = start.adding(days: Int.random(in: 10...90, using: &random))
            let size = index % 5 == 0 ? "S" : "M"
            let result = try system.ctl(["submit", "--customer", "c\(index)@example.com", "--contact", "c\(index)@example.com", "--size", size,
                                         "--from", "\(start)", "--to", "\(end)", "--wait", "20", "--json"])
            #expect(result.status == 0, "submit \(index) was not decided while a reader was held: \(result.status) \(result.errors)")
            let status = try JSONDecoder().decode(RentalStatus.self, from: Data(result.output.utf8))
            #expect(status.state != .received, "submit \(index) still queued")
        }
        release.signal()
        #expect(held.wait() == [0, 0], "the held reader kept its snapshot from before the decisions")

        // Now each answer equals an independent count over the store, per site.
        let store = try AllocatorStore(spool: Spool(path: system.spool), readOnly: true)
        #expect(try store.assignments().count > 0)
        for (from, to) in [("2099-01-01", "2099-02-01"), ("2099-01-20", "2099-04-01"), ("2099-03-01", "2099-03-02"), ("2099-01-05", "2099-06-01")] {
            let period = RentalPeriod(start: CalendarDay(iso: from)!, end: CalendarDay(iso: to)!)!
            for size in ["M", "S"] {
                let result = try system.ctl("availability", "--size", size, "--from", from, "--to", to, "--json")
                #expect(result.status == 0, "\(result.errors)")
                let answer = try Self.answer(result.output)
                var expected: [String: Int] = [:]
                for site in try store.units().filter({ $0.size == size }).map(\.site) {
                    expected[site] = try store.read { db in try AvailabilityQueryTests.referenceFree(db, size: size, site: site, period: period) }
                }
                #expect(Self.freeBySite(answer) == expected, "\(size) \(from)..\(to): \(result.output)")
                #expect(answer["free"] as? Int == expected.values.reduce(0, +))
                for site in answer["sites"] as? [[String: Any]] ?? [] {
                    let name = site["site"] as? String ?? "?"
                    let earliest = expected[name] == 0
                        ? try AvailabilityQueryTests.referenceEarliest(store, size: size, site: name, period: period).map(\.description) : nil
                    #expect(site["earliest_start"] as? String == earliest, "\(size) at \(name) \(from)..\(to)")
                    let price = site["price"] as? [String: Any]
                    if size == "M" {
                        #expect(price?["total_minor"] as? Int == Pricing.amount(monthlyRateMinor: 7900, period: period).map(Int.init))
                        #expect(price?["currency"] as? String == "EUR" && price?["monthly_rate_minor"] as? Int == 7900)
                    } else {
                        #expect(site["price"] is NSNull, "no rate for S")
                    }
                }
                let text = try system.ctl("availability", "--size", size, "--from", from, "--to", to)
                #expect(text.status == 0 && text.output.split(separator: "\n").count == expected.count, "\(text.output)")
            }
        }
    }

    /// An ordinary user of the setgid `spoolctl` may ask: before the store exists (empty answer,
    /// nothing created) and with rentals decided by the running allocator (the same answer as
    /// root's), also while someone holds the store's lock file, and the `--json` parses.
    @Test func anOrdinaryUserGetsTheSameAnswerAndWritesNothing() throws {
        let install = try SetgidInstallation("availability")
        let none = try install.run(as: "spool-bob", ["spoolctl", "availability", "--size", "S", "--from", "2099-01-01", "--months", "1"])
        #expect(none.status == 0 && none.output.contains("no unit of size S is in service"), "\(none.status) \(none.output) \(none.errors)")
        #expect(!FileManager.default.fileExists(atPath: "\(install.spool)/allocator"), "an ordinary user's availability created the store's directory")
        for unit in 1...3 { #expect(try install.asRoot(["units", "add", "S-\(unit)", "--size", "S", "--site", unit == 3 ? "north" : "main"]).status == 0) }
        let allocator = try install.start(as: "spool-daemon", ["\(install.base)/bin/spool-allocator", "--spool", install.spool])
        defer {
            for pid in descendants(of: allocator.process.processIdentifier) where executable(pid) == "\(install.base)/bin/spool-allocator" {
                kill(pid, SIGTERM)
            }
            _ = allocator.finish()
        }
        let decided = try install.run(as: "spool-alice", ["spoolctl", "submit", "--customer", "alice@example.com", "--contact", "alice@example.com",
                                                          "--size", "S", "--from", "2099-01-01", "--months", "1", "--wait", "20", "--json"])
        #expect(decided.status == 0 && decided.output.contains("\"assigned\""), "\(decided.status) \(decided.output) \(decided.errors)")
        let store = "\(install.spool)/allocator/state.sqlite"
        let lock = open("\(store).lock", O_RDWR | O_CLOEXEC)
        try #require(lock >= 0 && flock(lock, LOCK_EX) == 0, "cannot hold the store's lock")
        defer { close(lock) }
        for arguments in [["--json"], [], ["--site", "north", "--json"]] {
            let command = ["availability", "--size", "S", "--from", "2099-01-10", "--months", "1"] + arguments
            let bob = try install.run(as: "spool-bob", ["timeout", "10", install.binary] + command)
            let root = try install.asRoot(command)
            #expect(bob.status == 0 && root.status == 0, "\(arguments): \(bob.status) \(bob.errors) / \(root.errors)")
            if arguments.contains("--json") {
                var mine = try Self.answer(bob.output), theirs = try Self.answer(root.output)
                mine["as_of"] = nil
                theirs["as_of"] = nil
                #expect(NSDictionary(dictionary: mine) == NSDictionary(dictionary: theirs), "\(bob.output) / \(root.output)")
            } else {
                #expect(bob.output == root.output)
            }
        }
        let main = try Self.answer(try install.run(as: "spool-bob", [install.binary, "availability", "--size", "S", "--from", "2099-01-10",
                                                                    "--months", "1", "--json"]).output)
        #expect(Self.freeBySite(main) == ["main": 1, "north": 1], "alice's rental holds one of main's two units")
    }

    /// Bad input exits as submit does, with submit's messages (one rule for both); an unknown
    /// site is 65; a result that cannot be written exits 74; a store still at v3 answers
    /// without prices and is not migrated.
    @Test func badInputOutputFailuresAndAnOldStore() throws {
        let system = try SystemFixture(settings: ["currency": "EUR"])
        try system.addUnits([("A-1", "M")])
        let cases: [([String], Int32)] = [
            (["--size", "Q", "--from", "2099-01-01", "--months", "1"], 65),
            (["--size", "M", "--from", "2099-02-30", "--months", "1"], 65),
            (["--size", "M", "--from", "2000-01-01", "--months", "1"], 65),
            (["--size", "M", "--from", "2099-01-01", "--months", "0"], 65),
            (["--size", "M", "--from", "2099-01-01", "--months", "-3"], 65),
            (["--size", "M", "--from", "2099-01-01", "--months", "99999"], 65),
            (["--size", "M", "--from", "9999-12-01", "--months", "1"], 65),
            (["--size", "M", "--from", "2099-01-01", "--to", "2099-01-01"], 65),
            (["--size", "M", "--from", "2099-01-01", "--to", "10000-01-01"], 65),
            (["--size", "M", "--from", "2099-01-01", "--to", "2199-01-01"], 65),
            (["--size", "M", "--from", "2099-01-01"], 64),
            (["--size", "M", "--from", "2099-01-01", "--to", "2099-02-01", "--months", "1"], 64),
            (["--size", "M", "--from", "2099-01-01", "--months", "99999999999999999999999"], 64),
        ]
        for (arguments, code) in cases {
            let availability = try system.ctl(["availability"] + arguments)
            #expect(availability.status == code, "\(arguments): \(availability.status) \(availability.errors)")
            let submit = try system.ctl(["submit", "--customer", "c@example.com", "--contact", "c@example.com"] + arguments)
            #expect(submit.status == code && submit.errors == availability.errors, "\(arguments): submit says \(submit.errors)")
            let json = try system.ctl(["availability", "--json"] + arguments)
            if code == 65 { #expect(try Self.answer(json.output)["exit_code"] as? Int == 65) }
        }
        for site in ["nowhere", "", String(repeating: "x", count: 100_000), "main\nforged line"] {
            let result = try system.ctl("availability", "--size", "M", "--from", "2099-01-01", "--months", "1", "--site", site)
            #expect(result.status == 65 && result.errors.contains("no unit is at site"), "\(result.status) \(result.errors.prefix(200))")
            #expect(result.errors.split(separator: "\n").count == 1 && result.errors.count < 1000)
        }
        let far = try system.ctl("availability", "--size", "M", "--from", "9999-11-30", "--to", "9999-12-31", "--json")
        #expect(far.status == 0, "\(far.errors)")
        #expect(Self.freeBySite(try Self.answer(far.output)) == ["Site M": 1], "\(far.output)")
        for redirection in [">&-", ">/dev/full"] {
            let result = try OutputFailureTests.ctl(system, redirection, ["availability", "--size", "M", "--from", "2099-01-01", "--months", "1"])
            #expect(result.status == 74 && result.errors.hasPrefix("spoolctl: cannot write"), "\(redirection): \(result.status) \(result.errors)")
        }
        #expect(try OutputFailureTests.ctlIntoBrokenPipe(system, descriptor: 1, ["availability", "--size", "M", "--from", "2099-01-01",
                                                                                 "--months", "1", "--json"]).status == 74)

        // A store at v3 (an allocator not restarted since the upgrade): read, never migrated.
        let old = try SystemFixture(settings: ["currency": "EUR"])
        let path = try Spool(path: old.spool, create: true).directoryPath("allocator") + "/state.sqlite"
        do {
            let queue = try DatabaseQueue(path: path)
            try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
            try AllocatorStore.migrator.migrate(queue, upTo: "v3-finished-index")
            try queue.write { db in try db.execute(sql: "INSERT INTO unit (id, size, site, in_service, added_at) VALUES ('A', 'M', 'main', 1, 0)") }
        }
        let result = try old.ctl("availability", "--size", "M", "--from", "2099-01-01", "--months", "1", "--json")
        #expect(result.status == 0, "\(result.errors)")
        let sites = try Self.answer(result.output)["sites"] as? [[String: Any]]
        #expect(sites?.count == 1 && sites?.first?["free"] as? Int == 1 && sites?.first?["price"] is NSNull, "\(result.output)")
        let migrations = try DatabaseQueue(path: path).read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
        #expect(migrations.count == 3, "availability migrated the store")
        #expect(try old.ctl("help", "availability").output.contains("can still be rejected"))
        #expect(try old.ctl("help", "availability").output.contains("submit --waitlist"))
        try Data().write(to: URL(fileURLWithPath: path))
        let empty = try old.ctl("availability", "--size", "M", "--from", "2099-01-01", "--months", "1")
        #expect(empty.status == 65 && empty.errors.contains("damaged"), "a zero-length store: \(empty.status) \(empty.errors)")
    }
}
