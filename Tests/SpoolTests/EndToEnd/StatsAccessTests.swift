import Foundation
import Testing

/// `spoolctl stats` run by an ordinary user through the setgid binary: allowed (as `queues`),
/// showing no request data, and `--prometheus` writes with the user's own rights, never the
/// spool group's (else any user could replace a file the group may write, a journal segment
/// among them). Needs root, as the other setgid tests.
@Suite(.serialized) struct StatsAccessTests {
    @Test(.enabled(if: getuid() == 0, "needs root to create users and a setgid binary"))
    func anOrdinaryUserSeesCountsAndWritesOnlyWhereTheyMay() throws {
        let install = try SetgidInstallation("stats")
        let id = try install.submit(as: "spool-alice", customer: "alice@example.com")
        let asBob = try install.run(as: "spool-bob", ["spoolctl", "stats", "--json"])
        #expect(asBob.status == 0, "\(asBob.errors)")
        let object = try JSONSerialization.jsonObject(with: Data(asBob.output.utf8)) as? [String: Any]
        let queues = object?["queues"] as? [String: [String: Any]]
        #expect((queues?["allocation"]?["ready"] as? NSNumber)?.intValue == 1, "\(asBob.output)")
        #expect(!asBob.output.contains(id) && !asBob.output.contains("alice"), "no request data: \(asBob.output)")

        // Into the spool (group-writable, not bob's): refused, nothing written.
        let target = "\(install.spool)/journal/evil.prom"
        let intoSpool = try install.run(as: "spool-bob", ["spoolctl", "stats", "--prometheus", target])
        #expect(intoSpool.status == 73, "\(intoSpool.errors)")
        #expect(!FileManager.default.fileExists(atPath: target))
        #expect(SetgidInstallation.sh("ls -a \(install.spool)/journal | grep -c prom").output.trimmingCharacters(in: .whitespacesAndNewlines) == "0")

        // Into bob's own directory: written, owned by bob and his own group.
        let own = "\(install.base)/bob"
        try SetgidInstallation.require("mkdir -p \(own) && chown spool-bob:spool-bob \(own) && chmod 700 \(own)")
        let written = try install.run(as: "spool-bob", ["spoolctl", "stats", "--prometheus", "\(own)/x.prom"])
        #expect(written.status == 0, "\(written.errors)")
        let owner = SetgidInstallation.sh("stat -c %U:%G \(own)/x.prom").output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(owner == "spool-bob:spool-bob", "written with bob's rights: \(owner)")
    }
}
