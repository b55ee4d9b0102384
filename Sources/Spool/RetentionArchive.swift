#if canImport(Glibc)
import Glibc
#endif

/// The archive of what retention drops from the journal: files `archive/retention-<crc>-<n>.jsonl.z`
/// below the spool root, kept for the operator (nothing in the system reads them back).
///
/// Format (version 1, see `docs/spool-format.md`, "Compaction"): one zlib stream (RFC 1950,
/// Python's `zlib.decompress`) whose inflated bytes are the line `spool-archive 1 <count>\n`
/// followed by `<count>` lines, each the JSON of one dropped entity's latest index event
/// (`entity`, `version`, `state`, `at`, `keys`, `document`), sorted by entity.
///
/// Durability and idempotency: a file is written whole in `tmp/`, `fsync`ed, renamed into
/// `archive/`, and the directory `fsync`ed before ``write(_:)`` returns (so before anything
/// leaves the journal). The name comes from the content: a rerun after a crash that drops the
/// same entities finds its file already there and writes nothing; one that drops more (time
/// passed) writes a second file that repeats the first one's events identically (deduplicate on
/// `entity` and `version` when reading several files). Nothing is lost: an entity leaves the
/// journal only after a file holding it is durable.
///
/// `archive/` is made group-writable (0770, and the spool's setgid group), like every shared
/// directory: the first compaction may be an operator's as root, and the spool user's timer
/// must still write the next archive (with 0750 it could not, and no request was dropped again).
public struct RetentionArchive: Sendable {
    let spool: Spool

    /// The archive of `spool`.
    public init(spool: Spool) { self.spool = spool }

    /// The inflated bytes of an archive of `events`.
    public static func contents(_ events: [IndexEvent]) -> [UInt8] {
        var bytes = Array("spool-archive 1 \(events.count)\n".utf8)
        for event in events {
            bytes += event.encoded()
            bytes.append(UInt8(ascii: "\n"))
        }
        return bytes
    }

    /// Writes `events` durably; returns the file's path relative to the spool root.
    public func write(_ events: [IndexEvent]) throws -> String {
        let inflated = Self.contents(events)
        let compressed: [UInt8]
        do { compressed = try Zlib.compress(inflated) } catch {
            throw SpoolError.corrupt(path: "archive", reason: "zlib deflate failed (\(error.code))")
        }
        let directory = try spool.root.subdirectory("archive", create: true)  // 0770: whoever compacts next writes here too
        let stem = "retention-" + hex(CRC32.checksum(inflated)) + "-\(events.count)"
        for attempt in 0..<100 {
            let name = stem + (attempt == 0 ? "" : "-\(attempt)") + ".jsonl.z"
            do {
                let existing = try directory.readFile(name, limit: compressed.count + 1)
                if existing == compressed { return "archive/\(name)" }  // a rerun: already durable
                continue  // another archive with the same checksum: next name
            } catch .notFound {
            } catch .tooLarge {
                continue
            }
            try directory.createDurably(name, contents: compressed, staging: spool.staging, mode: 0o640)
            return "archive/\(name)"
        }
        throw SpoolError.corrupt(path: "archive", reason: "no free archive name for \(stem)")
    }

    private func hex(_ value: UInt32) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 8 - text.count) + text
    }
}
