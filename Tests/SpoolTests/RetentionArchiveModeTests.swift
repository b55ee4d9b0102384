import Foundation
import Synchronization
import Testing
@testable import Spool

/// `archive/` is shared by whoever compacts: root (an operator) and the spool user (the timer).
@Suite struct RetentionArchiveModeTests {
    /// The first archive creates `archive/` group-writable (mode 0770 asked of `mkdir`; the
    /// programs' umask 007 keeps it), so that a compaction by another member of the spool's
    /// group (the timer's, as the spool user, after an operator's as root) can write the next
    /// archive. With 0750 every later retention pass as the spool user failed with EACCES.
    @Test func theArchiveDirectoryIsAskedGroupWritable() throws {
        let modes = Mutex<[String: mode_t]>([:])
        var calls = FileSystemCalls.live
        let live = calls.makeDirectory
        calls.makeDirectory = { directory, name, mode throws(SystemCallError) in
            modes.withLock { $0[name] = mode }
            try live(directory, name, mode)
        }
        let (directory, spool) = try makeSpool(calls: calls)
        _ = directory
        let event = IndexEvent(entity: "a", version: 1, state: "done", at: 1, keys: [:], document: "{}")
        _ = try RetentionArchive(spool: spool).write([event])
        let mode = try #require(modes.withLock { $0["archive"] })
        #expect(mode & S_IWGRP != 0, "archive/ asked with mode \(String(mode, radix: 8))")
    }
}
