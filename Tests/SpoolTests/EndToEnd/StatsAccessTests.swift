import Foundation
import Testing

/// `spoolctl stats` run through the setgid binary: an ordinary user may look (as `queues`) and
/// sees no request data, but may not write `--prometheus` (77); an operator's `--prometheus`
/// writes with the operator's own rights, never the spool group's (else it could replace a file
/// the group may write, a journal segment among them). Needs root, as the other setgid tests.
@Suite(.serialized) struct StatsAccessTests {
    @Test(.enabled(if: getuid() == 0, "needs root to create users and a setgid binary"))
    func usersSeeCountsAndOnlyOperatorsWriteTheTextfile() throws {
        let install = try SetgidInstallation("stats")
        let id = try install.submit(as: "spool-alice", customer: "alice@example.com")
        let asBob = try install.run(as: "spool-bob", ["spoolctl", "stats", "--json"])
        #expect(asBob.status == 0, "\(asBob.errors)")
        let object = try JSONSerialization.jsonObject(with: Data(asBob.output.utf8)) as? [String: Any]
        let queues = object?["queues"] as? [String: [String: Any]]
        #expect((queues?["allocation"]?["ready"] as? NSNumber)?.intValue == 1, "\(asBob.output)")
        #expect(!asBob.output.contains(id) && !asBob.output.contains("alice"), "no request data: \(asBob.output)")

        // An ordinary user may not write the metrics file at all (the hostile campaign's rule:
        // a restricted command writes nothing outside the spool).
        let own = "\(install.base)/home"
        try SetgidInstallation.require("mkdir -p \(own) && chmod 1777 \(own)")
        let refused = try install.run(as: "spool-bob", ["spoolctl", "stats", "--prometheus", "\(own)/bob.prom"])
        #expect(refused.status == 77, "\(refused.errors)")
        #expect(!FileManager.default.fileExists(atPath: "\(own)/bob.prom"))

        // An operator: into the spool (group-writable, not carol's) refused, nothing written.
        let target = "\(install.spool)/journal/evil.prom"
        let intoSpool = try install.run(as: "spool-carol", ["spoolctl", "stats", "--prometheus", target])
        #expect(intoSpool.status == 73, "\(intoSpool.errors)")
        #expect(!FileManager.default.fileExists(atPath: target))
        #expect(SetgidInstallation.sh("ls -a \(install.spool)/journal | grep -c prom").output.trimmingCharacters(in: .whitespacesAndNewlines) == "0")

        // Into a directory carol may write: written with carol's own rights, not the group's.
        let written = try install.run(as: "spool-carol", ["spoolctl", "stats", "--prometheus", "\(own)/carol.prom"])
        #expect(written.status == 0, "\(written.errors)")
        let group = SetgidInstallation.sh("stat -c %G \(own)/carol.prom").output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!group.isEmpty && group != SetgidInstallation.spoolGroup, "written with carol's rights: \(group)")
    }
}
