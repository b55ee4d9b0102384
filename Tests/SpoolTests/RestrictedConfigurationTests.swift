import Foundation
import Testing
@testable import Intake
@testable import Rentals

/// The configuration lookup for an untrusted caller (a setgid `spoolctl` run by an ordinary
/// user): only the system file and what it lists. End-to-end: `HostileUserTests`.
struct RestrictedConfigurationTests {
    private let directory = TemporaryDirectory("restricted")

    private func write(_ name: String, _ text: String) throws -> String {
        let path = directory.sub(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func load(_ system: String, path: String? = nil, root: String? = nil) throws(ConfigurationError) -> SystemConfiguration {
        try SystemConfiguration.loadRestricted(path: path, root: root, systemPath: system)
    }

    @Test func onlyTheSystemFileAndWhatItListsAreRead() throws {
        let listed = try write("listed.conf", "spool_root = /srv/listed\noperator_group = wheel\nmax_attempts = 3\n")
        let system = try write("system.conf", """
            spool_root = /srv/spool
            operator_group = ops
            alternate_config_files = \(listed)
            alternate_spool_roots = /srv/second, /srv/third

            """)
        let plain = try load(system)
        #expect(plain.spoolRoot == "/srv/spool" && plain.operatorGroup == "ops")
        #expect(try load(system, path: system, root: "/srv/spool").spoolRoot == "/srv/spool")
        #expect(try load(system, root: "/srv/third").spoolRoot == "/srv/third")
        #expect(try load(system, root: "/srv/third/").spoolRoot == "/srv/third/")
        #expect(try load(system, root: "/srv/spool/").spoolRoot == "/srv/spool")
        let alternative = try load(system, path: listed)
        #expect(alternative.spoolRoot == "/srv/listed" && alternative.maxAttempts == 3)
        #expect(alternative.operatorGroup == "ops", "the operator group comes from the system file only")
        #expect(alternative.alternateSpoolRoots == ["/srv/second", "/srv/third"])
    }

    @Test func anythingElseIsRefusedWithOneMessage() throws {
        let system = try write("system.conf", "spool_root = /srv/spool\n")
        let malformed = try write("malformed.conf", "this is not a configuration\n")
        let unreadable = try write("unreadable.conf", "spool_root = /x\n")
        chmod(unreadable, 0)
        var messages: Set<String> = []
        let aDirectory = directory.sub("a-directory")
        try FileManager.default.createDirectory(atPath: aDirectory, withIntermediateDirectories: false)
        for probe in [malformed, unreadable, directory.sub("missing.conf"), aDirectory] {
            do {
                _ = try load(system, path: probe)
                Issue.record("\(probe) accepted")
            } catch {
                #expect(error.refused)
                messages.insert(error.message.replacingOccurrences(of: probe, with: "FILE"))
            }
        }
        #expect(messages.count == 1, "\(messages)")
        #expect(throws: ConfigurationError.self) { try load(system, root: "/tmp/mine") }
        #expect(throws: ConfigurationError.self) { try load(directory.sub("no-system.conf")) }
        let relative = try write("relative.conf", "operator_group = ops\n")
        #expect(throws: ConfigurationError.self, "the default ./spool is relative to the caller's directory") { try load(relative) }
        let badList = try write("bad-list.conf", "alternate_spool_roots = relative/path\n")
        #expect(throws: ConfigurationError.self) { try load(badList) }
    }

    @Test func unrestrictedLookupIsUnchanged() throws {
        let file = try write("any.conf", "spool_root = /srv/any\noperator_group = mine\n")
        let loaded = try SystemConfiguration.load(explicitPath: file, spoolOverride: "/srv/other", environment: [:], restricted: false)
        #expect(loaded.spoolRoot == "/srv/other" && loaded.operatorGroup == "mine")
    }
}
