import Foundation
import Testing

/// Replays every file of the fuzz corpora (`Fuzz/Corpus/<target>/`: minimised seeds, inputs the
/// fuzzer found interesting, and every crasher it found) through its target, without libFuzzer:
/// a decoder that crashes or breaks a property on any of them fails here, on every CI run. The
/// targets and their properties are the fuzzer's own (`FuzzTargets` links to `Fuzz/Sources`).
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Fuzz/Corpus").standardizedFileURL.path

    @Test(arguments: FuzzTarget.all.map(\.name))
    func corpusReplays(_ name: String) throws {
        let target = try #require(FuzzTarget.named(name))
        let directory = "\(Self.corpus)/\(name)"
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { !$0.hasPrefix(".") }.sorted()
        #expect(!files.isEmpty, "no corpus for \(name) in \(directory)")
        for file in files {
            let input = try #require(FileManager.default.contents(atPath: "\(directory)/\(file)"), "cannot read \(file)")
            let violations = target.check(Array(input))
            #expect(violations.isEmpty, "\(name)/\(file): \(violations.joined(separator: "; "))")
        }
    }

    @Test func everyCorpusDirectoryHasATarget() throws {
        let directories = try FileManager.default.contentsOfDirectory(atPath: Self.corpus).filter { !$0.hasPrefix(".") }
        #expect(Set(directories) == Set(FuzzTarget.all.map(\.name)))
    }
}
