import Foundation
import Testing

/// `--version` on every program (`<program> <version>`), and the stamp scripts/build-release
/// writes into the built programs (Sources/CBuildVersion/version.c, scripts/lib/stamp-version).
/// scripts/deb-test checks the stamped release programs of a package; these check, in every
/// `scripts/test` run, the unstamped development build and the stamping itself on a copy.
@Suite struct VersionTests {
    static let programs = ["spoolctl", "spool-allocator", "spool-notifier"]

    /// The repository root (this file is Tests/SpoolTests/EndToEnd/VersionTests.swift).
    private var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

    @Test(arguments: programs) func developmentBuildSaysDev(program: String) throws {
        let result = try ChildProcess(program, ["--version"]).finish()
        #expect(result.status == 0)
        #expect(result.output == "\(program) 0.0.0-dev\n")
        #expect(result.errors.isEmpty)
    }

    @Test func stampedCopyAnswersTheStampedVersion() throws {
        let directory = TemporaryDirectory("version")
        let copy = directory.sub("spool-notifier")
        try FileManager.default.copyItem(atPath: "\(productsDirectory())/spool-notifier", toPath: copy)
        let stamp = repository.appendingPathComponent("scripts/lib/stamp-version").path
        let stamped = try ChildProcess(stamp, ["1.2.3+4.gdeadbeef", copy]).finish()
        #expect(stamped.status == 0, "\(stamped.errors)")
        #expect(try ChildProcess(copy, ["--version"]).finish().output == "spool-notifier 1.2.3+4.gdeadbeef\n")
        // Stamped again (a second build-release into the same directory): the new one wins,
        // nothing of the longer old one is left behind.
        #expect(try ChildProcess(stamp, ["2", copy]).finish().status == 0)
        #expect(try ChildProcess(copy, ["--version"]).finish().output == "spool-notifier 2\n")
        // Refused, and the program unchanged: not a version, too long, no marker in the file.
        #expect(try ChildProcess(stamp, ["1.0;rm -rf /", copy]).finish().status == 64)
        #expect(try ChildProcess(stamp, [String(repeating: "1", count: 64), copy]).finish().status == 64)
        let other = directory.sub("other")
        try Data("no marker here".utf8).write(to: URL(fileURLWithPath: other))
        #expect(try ChildProcess(stamp, ["3", other]).finish().status == 1)
        #expect(try ChildProcess(copy, ["--version"]).finish().output == "spool-notifier 2\n")
    }
}
