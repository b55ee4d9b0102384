import ArgumentParser
import Testing
@testable import spoolctl

/// Start-up cost (docs/performance.md, "Start-up"): every `spoolctl` command states its name in
/// its `CommandConfiguration`. Without one, ArgumentParser derives the name from the type with
/// `String(describing:)` for every command of the tree on every run, each a scan of all the
/// protocol conformances in the binary: that doubled the instructions of `spoolctl --help`.
@Suite struct CommandNameTests {
    /// Every command of the tree below `command`, `command` included.
    private func commands(below command: ParsableCommand.Type) -> [ParsableCommand.Type] {
        [command] + command.configuration.subcommands.flatMap { commands(below: $0) }
    }

    @Test func everyCommandNamesItself() {
        let all = commands(below: Spoolctl.self)
        #expect(all.count > 10, "the tree was not walked: \(all.count) commands")
        for command in all {
            #expect(command.configuration.commandName != nil, "\(command) has no commandName in its configuration")
        }
    }
}
