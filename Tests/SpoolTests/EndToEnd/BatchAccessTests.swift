import Foundation
import Intake
import Rentals
import Testing
@testable import Spool

/// `submit --batch` by ordinary users of the setgid `spoolctl`: FILE is opened with the
/// caller's own rights, a line cannot name who submitted it, the limits hold, and each request of
/// the batch is the caller's alone. Needs root (users, a group, a setgid binary).
@Suite(.serialized) struct BatchAccessTests {
    static func line(_ customer: String) -> String {
        #"{"customer":"\#(customer)","contact":"\#(customer)@example.com","size":"S","from":"2099-01-01","months":1}"#
    }

    @Test(.enabled(if: getuid() == 0, "needs root to create users and a setgid binary"))
    func aRestrictedBatchReadsOnlyWhatTheCallerMayAndStaysTheCallers() throws {
        let install = try SetgidInstallation("batch")
        func run(_ user: String, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
            try install.run(as: user, ["spoolctl"] + arguments)
        }
        func queued() -> Int { filesBelow("\(install.spool)/queues/allocation/ready").count }
        let batch = ([Self.line("alice-1"), Self.line("alice-2"),
                      #"{"customer":"x","contact":"x@example.com","size":"S","from":"2099-01-01","months":1,"submitted_by":0}"#]
            .joined(separator: "\n") + "\n")
        // A file of the spool's group, which the setgid binary could read but alice cannot.
        let secret = "\(install.base)/secret.jsonl"
        try Data(batch.utf8).write(to: URL(fileURLWithPath: secret))
        try SetgidInstallation.require("chgrp \(SetgidInstallation.spoolGroup) \(secret) && chmod 640 \(secret)")
        for path in [secret, "\(install.spool)/format", "\(install.etc)/../spool/queues"] {
            let refused = try run("spool-alice", ["submit", "--batch", path])
            #expect(refused.status == 66, "\(path): \(refused.status) \(refused.errors)")
            #expect(!refused.output.contains("alice-1") && !refused.errors.contains("alice-1") && !refused.errors.contains("spool-format"))
        }
        #expect(queued() == 0)

        // Her own file, and standard input.
        let own = "\(install.base)/own.jsonl"
        try Data(batch.utf8).write(to: URL(fileURLWithPath: own))
        try SetgidInstallation.require("chmod 644 \(own)")
        let submitted = try run("spool-alice", ["submit", "--batch", own, "--json"])
        #expect(submitted.status == 65, "the line naming submitted_by is refused: \(submitted.errors)")
        #expect(submitted.errors.contains("own.jsonl:3: unknown field \"submitted_by\""))
        let results = try #require(try JSONSerialization.jsonObject(with: Data(submitted.output.utf8)) as? [[String: Any]])
        let ids = results.compactMap { $0["id"] as? String }
        #expect(ids.count == 2 && queued() == 1)
        let piped = try install.run(as: "spool-alice", ["/bin/sh", "-c", "\"$0\" submit --batch - < \"$1\"", install.binary, own])
        #expect(piped.status == 65 && piped.output.contains("accepted"), "\(piped.errors)")
        #expect(queued() == 2)

        // Each request is alice's: she sees and cancels it; bob neither sees nor cancels it.
        for id in ids {
            let status = try run("spool-alice", ["status", id, "--json"])
            #expect(status.status == 0 && status.output.contains("\"submitted_by_name\" : \"spool-alice\""), "\(status.errors)")
            #expect(try run("spool-bob", ["status", id]).status == 77)
            #expect(try run("spool-bob", ["cancel", id]).status == 77)
        }
        #expect(!(try run("spool-bob", ["list"]).output.contains(ids[0])))
        #expect(try run("spool-alice", ["list"]).output.contains(ids[1]))
        #expect(try run("spool-alice", ["cancel", ids[0]]).status == 0)

        // Over the limits: refused whole, nothing queued.
        let huge = "\(install.base)/huge.jsonl"
        try Data((Array(repeating: Self.line("h"), count: BatchFile.maxLines + 1).joined(separator: "\n")).utf8)
            .write(to: URL(fileURLWithPath: huge))
        try SetgidInstallation.require("chmod 644 \(huge)")
        let before = queued()
        #expect(try run("spool-alice", ["submit", "--batch", huge]).status == 65)
        #expect(try install.run(as: "spool-alice", ["/bin/sh", "-c", "head -c 5000000 /dev/zero | \"$0\" submit --batch -", install.binary]).status == 65)
        #expect(queued() == before)
    }
}
