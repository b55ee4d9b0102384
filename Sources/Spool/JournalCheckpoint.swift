#if canImport(Glibc)
import Glibc
#endif

/// What the last durable append left behind: the live segment (sequence, creation time, the
/// file's identity and change time) and the end of its last whole, validated, durable frame.
/// Kept in `journal/lock` (the append lock's own file; see `docs/spool-format.md`, "Append
/// checkpoint"), so that a process opening the journal to append one record reads one short
/// line instead of the whole live segment.
///
/// Trust rule: the checkpoint is used only when it decodes (its CRC-32 matches), the segment
/// `<seq>.log` it names is the file it names (device, inode), has exactly the size it records
/// and the same change time (`st_ctim`: any write, truncation or `chmod` of the file since,
/// by anyone, changes it), and `<seq>.log.z` does not exist (so the segment is still the live
/// one). Anything else (a missing, stale, torn or damaged checkpoint; appends by a process
/// since, or an interrupted one; a flipped byte written into the segment) falls back to reading
/// and validating the whole segment, as a journal without a checkpoint always does.
///
/// Written only under the append lock, after the segment's `fsync`, with the size and change
/// time taken *before* that `fsync` and only when the size is the end of the last frame this
/// process validated or wrote, and only when the segment was, just before that append, the
/// file this process last knew whole or the one the current checkpoint names (so a byte changed
/// in place since anyone validated it is never vouched for, whoever appends after it): so every
/// byte it vouches for is whole and durable, and a power
/// loss that keeps the checkpoint keeps what it vouches for. The checkpoint itself is not
/// synced: a lost or torn one costs one whole read, never a record.
struct JournalCheckpoint: Equatable, Sendable {
    var sequence: UInt64
    var validEnd: Int
    var createdAt: Int64
    var device: UInt64
    var inode: UInt64
    var changedSeconds: Int64
    var changedNanoseconds: Int64

    static let magic = "spool-journal-checkpoint 1"
    /// The longest record ``decode(_:)`` reads.
    static let maxLength = 256

    init(sequence: UInt64, validEnd: Int, createdAt: Int64, status: stat) {
        self.sequence = sequence
        self.validEnd = validEnd
        self.createdAt = createdAt
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
        changedSeconds = Int64(status.st_ctim.tv_sec)
        changedNanoseconds = Int64(status.st_ctim.tv_nsec)
    }

    /// True when `status` (of the segment the checkpoint names) is the file as it left it.
    func matches(_ status: stat) -> Bool {
        UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode && Int(status.st_size) == validEnd
            && Int64(status.st_ctim.tv_sec) == changedSeconds && Int64(status.st_ctim.tv_nsec) == changedNanoseconds
    }

    /// One line: the fields in decimal, then the CRC-32 of the text before it, in hex.
    func encoded() -> [UInt8] {
        let text = "\(Self.magic) \(sequence) \(validEnd) \(createdAt) \(device) \(inode) \(changedSeconds) \(changedNanoseconds)"
        return Array("\(text) \(hex8(CRC32.checksum(Array(text.utf8))))\n".utf8)
    }

    /// The checkpoint at the start of `bytes` (what follows its newline is ignored: a shorter
    /// record written over a longer one); nil unless it is whole and its CRC-32 matches.
    static func decode(_ bytes: ArraySlice<UInt8>) -> JournalCheckpoint? {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = bytes[bytes.startIndex..<newline]
        guard let space = line.lastIndex(of: UInt8(ascii: " ")),
              String(decoding: line[(space + 1)...], as: UTF8.self) == hex8(CRC32.checksum(line[..<space])) else { return nil }
        let text = String(decoding: line[..<space], as: UTF8.self)
        guard text.hasPrefix(magic + " ") else { return nil }
        let fields = text.dropFirst(magic.count + 1).split(separator: " ")
        guard fields.count == 7, let sequence = UInt64(fields[0]), let validEnd = Int(fields[1]), let createdAt = Int64(fields[2]),
              let device = UInt64(fields[3]), let inode = UInt64(fields[4]), let seconds = Int64(fields[5]),
              let nanoseconds = Int64(fields[6]), validEnd >= 0 else { return nil }
        var status = stat()
        status.st_dev = .init(truncatingIfNeeded: device)
        status.st_ino = .init(truncatingIfNeeded: inode)
        status.st_ctim.tv_sec = .init(truncatingIfNeeded: seconds)
        status.st_ctim.tv_nsec = .init(truncatingIfNeeded: nanoseconds)
        return JournalCheckpoint(sequence: sequence, validEnd: validEnd, createdAt: createdAt, status: status)
    }

    /// Reads the checkpoint from the lock file `descriptor` (nil when there is none or it does
    /// not decode). A direct `pread`, outside ``FileSystemCalls``: the checkpoint is a hint, and
    /// the tests that record or fail the spool's calls never depend on it.
    static func read(from descriptor: Int32) -> JournalCheckpoint? {
        var buffer = [UInt8](repeating: 0, count: maxLength)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, maxLength, 0) }
        guard count > 0 else { return nil }
        return decode(buffer[0..<count])
    }

    /// Writes the checkpoint over the start of the lock file `descriptor`; best effort (a failed
    /// or torn write only costs the next opener a whole read).
    func write(to descriptor: Int32) {
        let bytes = encoded()
        _ = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }
}
