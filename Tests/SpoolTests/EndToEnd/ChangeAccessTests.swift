import Foundation
import Testing

/// `spoolctl extend` and `spoolctl end` through the setgid front door, as ordinary users: a
/// customer changes only their own rentals, and another user's request answers exactly as no
/// request does (77, one message). Needs root, as CI has (``SetgidInstallation``).
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to create users and a setgid binary"))
struct ChangeAccessTests {
    @Test func anotherUsersExtendIsRefused77() throws {
        let install = try SetgidInstallation("changes")
        #expect(try install.asRoot(["units", "add", "S-1", "--size", "S"]).status == 0)
        let allocator = try install.start(as: "spool-daemon", ["\(install.base)/bin/spool-allocator", "--spool", install.spool])
        defer {
            for pid in descendants(of: allocator.process.processIdentifier) where executable(pid) == "\(install.base)/bin/spool-allocator" {
                kill(pid, SIGTERM)
            }
            _ = allocator.finish()
        }
        let submitted = try install.run(as: "spool-alice", ["spoolctl", "submit", "--customer", "alice@example.com", "--contact", "alice@example.com",
                                                            "--size", "S", "--from", "2099-01-01", "--to", "2099-02-01", "--wait", "20", "--json"])
        try #require(submitted.status == 0, "\(submitted.errors)")
        let id = try #require((try JSONSerialization.jsonObject(with: Data(submitted.output.utf8)) as? [String: Any])?["id"] as? String)
        let before = try install.asRoot(["status", id, "--json"]).output
        let journal = try journalFiles(install)

        var answers: Set<String> = []
        for (target, command) in [(id, "extend"), (id, "end"), ("01kzzzzzzzzzzzzzzzzzzzzzzz", "extend"), ("01kzzzzzzzzzzzzzzzzzzzzzzz", "end")] {
            let option = command == "extend" ? ["--to", "2099-03-01"] : ["--on", "2099-01-15"]
            let result = try install.run(as: "spool-bob", ["spoolctl", command, target] + option + ["--wait", "5"])
            #expect(result.status == 77, "\(command) \(target): \(result.status) \(result.output) \(result.errors)")
            #expect(!result.output.contains("alice") && !result.errors.contains("alice"), "\(result.output) \(result.errors)")
            answers.insert("\(result.status) " + result.errors.replacingOccurrences(of: target, with: "ID"))
        }
        #expect(answers.count == 1, "another user's request and no request must look the same: \(answers)")
        #expect(try install.asRoot(["status", id, "--json"]).output == before, "bob changed nothing")
        #expect(try journalFiles(install) == journal, "a refused caller journals nothing")

        // Alice's own extension, restricted too: applied, and waited for through the read-only index.
        let own = try install.run(as: "spool-alice", ["spoolctl", "extend", id, "--to", "2099-03-01", "--wait", "20"])
        #expect(own.status == 0 && own.output.contains("request \(id) extended: unit S-1 until 2099-03-01"), "\(own.output) \(own.errors)")
        let ended = try install.run(as: "spool-alice", ["spoolctl", "end", id, "--on", "2099-02-15", "--wait", "20", "--json"])
        #expect(ended.status == 0 && ended.output.contains("\"previous_to\" : \"2099-03-01\""), "\(ended.output) \(ended.errors)")
        // An operator may change anyone's rental.
        let carol = try install.run(as: "spool-carol", ["spoolctl", "extend", id, "--to", "2099-02-20", "--wait", "20"])
        #expect(carol.status == 0 && carol.output.contains("extended"), "\(carol.output) \(carol.errors)")
    }

    /// The journal's files and their sizes.
    private func journalFiles(_ install: SetgidInstallation) throws -> [String: Int] {
        let path = "\(install.spool)/journal"
        var files: [String: Int] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: path) {
            files[name] = (try? FileManager.default.attributesOfItem(atPath: "\(path)/\(name)")[.size] as? Int) ?? -1
        }
        return files
    }
}
