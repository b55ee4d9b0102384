import Foundation
import Testing
@testable import Rentals

/// `spoolctl config check` lists the keys from the stored properties of
/// ``SystemConfiguration`` (``SystemConfiguration/keyValues``): each must be a key the file
/// parser accepts, and the listing must read back as the same configuration.
struct ConfigurationKeysTests {
    private func reparsed(_ configuration: SystemConfiguration) throws -> SystemConfiguration {
        var again = SystemConfiguration()
        let text = configuration.keyValues.map { "\($0.key) = \($0.value)" }.joined(separator: "\n")
        try again.apply(text, file: "listing")
        return again
    }

    @Test func everyListedKeyParsesBackToTheSameConfiguration() throws {
        let defaults = SystemConfiguration()
        #expect(try reparsed(defaults) == defaults)
        let keys = defaults.keyValues.map(\.key)
        #expect(keys.contains("retention_days") && keys.contains("retention_archive") && keys.contains("spool_root"))
        #expect(Set(keys).count == keys.count)
        var changed = SystemConfiguration()
        changed.spoolRoot = "/srv/spool"
        changed.sizes = [SizeClass(name: "A", area: 0.75), SizeClass(name: "B", area: 12)]
        changed.retentionDays = 400
        changed.retentionArchive = false
        changed.alternateSpoolRoots = ["/srv/a", "/srv/b"]
        changed.notifyHook = "/usr/local/bin/hook --flag"
        #expect(try reparsed(changed) == changed)
    }

    @Test func aByteOrderMarkAndCarriageReturnsAreAcceptedAndDuplicatesAreRecorded() throws {
        var configuration = SystemConfiguration()
        var lines: [String: [Int]] = [:]
        try configuration.apply("\u{FEFF}max_attempts = 3\r\nsender = A <a@b>\r\nmax_attempts = 4\r\n", file: "f", recording: &lines)
        #expect(configuration.maxAttempts == 4 && configuration.sender == "A <a@b>")
        #expect(lines["max_attempts"] == [1, 3] && lines["sender"] == [2])
    }
}
