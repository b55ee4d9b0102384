#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import Spool

/// The on-disk states a power loss may leave at one cut point of a recorded run.
///
/// **The model** (after ALICE, Pillai et al., OSDI'14, and LazyFS; deliberately weaker than any
/// real Linux file system, so that it allows every state they allow and more):
///
/// - A cut after event *n* keeps events `0..<n` as having run; nothing after it happened.
/// - **Directory entries.** A create, `mkdir`, `link`, `unlink` or `rename` is durable once the
///   directory it changes is `fsync`ed after it (a `rename` counts for its *target* directory
///   only: syncing the source directory does not make it durable). Every entry operation not yet
///   durable at the cut may or may not have reached the disk, independently of every other one:
///   any subset, across and within directories, so every reordering of unsynced entry operations
///   is covered. The state is the initial one with the durable operations and the chosen subset
///   replayed in their original order. A `rename` is atomic (both names change, or neither).
///   Operations name inodes, so a rename whose source name never became durable still gives
///   the (durable) file its new name.
/// - **File data.** A `write` or `ftruncate` is durable once that file is `fsync`ed after it.
///   The operations on a file since its last `fsync` persist as a prefix, in order (writes to one
///   file are not reordered among themselves), and the last one of the prefix may be *torn*: only
///   its part up to a 512-byte boundary of the file persisted (sector granularity, finer than
///   LazyFS's pages), or its length persisted as zeros (the size updated, the data not: ext4
///   `data=writeback`, ALICE's "garbage" appends). `fsync` of a file does not make its name durable.
/// - **SQLite files** are not under the seam; their state at a cut is the last snapshot taken
///   before it (see ``RecordingFileSystem``): every transaction committed before the cut
///   survives, nothing after it. SQLite's own recovery (WAL replay) is trusted, its torn states
///   are not simulated. A database file is materialised only where its directory survived.
///
/// Where the combinations of one cut are few (at most `limit`), all are enumerated; otherwise
/// `limit` are sampled with a generator seeded by the cut, always including "nothing unsynced
/// survived" and "everything survived".
struct CrashModel {
    enum EntryOperation {
        case create(directory: Int, name: String, inode: Int)
        case rename(fromDirectory: Int, from: String, toDirectory: Int, to: String, inode: Int)
        case link(directory: Int, name: String, inode: Int)
        case unlink(directory: Int, name: String, inode: Int)

        /// The directory whose `fsync` makes it durable.
        var directory: Int {
            switch self {
            case .create(let directory, _, _), .link(let directory, _, _), .unlink(let directory, _, _): directory
            case .rename(_, _, let toDirectory, _, _): toDirectory
            }
        }
    }

    enum DataOperation {
        case write(offset: Int, bytes: [UInt8])
        case truncate(length: Int)
    }

    /// How much of a file's unsynced operations survives: the first `applied` whole, then
    /// possibly part of the next.
    struct DataVariant: Hashable {
        enum Partial: Hashable { case none, torn(at: Int), zeros }
        var applied: Int
        var partial: Partial
    }

    /// Every entry operation so far, and whether it is durable.
    private(set) var entryOperations: [(operation: EntryOperation, durable: Bool)] = []
    private(set) var isDirectory: [Int: Bool] = [0: true]
    private(set) var modes: [Int: mode_t] = [:]
    /// File data as made durable by `fsync`.
    private(set) var data: [Int: [UInt8]] = [:]
    /// Per file, the data operations since its last `fsync`.
    private(set) var pendingData: [Int: [DataOperation]] = [:]
    private(set) var sqlite: Int?
    private(set) var acks: [PowerLossAck] = []

    /// Applies the next event of the run.
    mutating func apply(_ event: PowerLossEvent) {
        switch event {
        case .create(let directory, let name, let inode, let directoryFlag, let mode):
            isDirectory[inode] = directoryFlag
            modes[inode] = mode
            if !directoryFlag { data[inode] = [] }
            entryOperations.append((.create(directory: directory, name: name, inode: inode), false))
        case .rename(let fromDirectory, let from, let toDirectory, let to, let inode):
            entryOperations.append((.rename(fromDirectory: fromDirectory, from: from, toDirectory: toDirectory, to: to, inode: inode), false))
        case .link(let directory, let name, let inode):
            entryOperations.append((.link(directory: directory, name: name, inode: inode), false))
        case .unlink(let directory, let name, let inode):
            entryOperations.append((.unlink(directory: directory, name: name, inode: inode), false))
        case .write(let inode, let offset, let bytes):
            pendingData[inode, default: []].append(.write(offset: offset, bytes: bytes))
        case .truncate(let inode, let length):
            pendingData[inode, default: []].append(.truncate(length: length))
        case .fsync(let inode):
            if isDirectory[inode] == true {
                for index in entryOperations.indices where !entryOperations[index].durable && entryOperations[index].operation.directory == inode {
                    entryOperations[index].durable = true
                }
            } else if let pending = pendingData.removeValue(forKey: inode) {
                var bytes = data[inode] ?? []
                for operation in pending { Self.apply(operation, to: &bytes) }
                data[inode] = bytes
            }
        case .sqlite(let index):
            sqlite = index
        case .ack(let ack):
            acks.append(ack)
        }
    }

    private static func apply(_ operation: DataOperation, to bytes: inout [UInt8]) {
        switch operation {
        case .write(let offset, let written):
            if bytes.count < offset + written.count { bytes.append(contentsOf: repeatElement(0, count: offset + written.count - bytes.count)) }
            bytes.replaceSubrange(offset..<(offset + written.count), with: written)
        case .truncate(let length):
            if bytes.count > length { bytes.removeSubrange(length...) } else { bytes.append(contentsOf: repeatElement(0, count: length - bytes.count)) }
        }
    }

    /// The ways a file's unsynced operations may persist (see the type's description).
    static func variants(_ pending: [DataOperation]) -> [DataVariant] {
        var variants = [DataVariant(applied: 0, partial: .none)]
        for (index, operation) in pending.enumerated() {
            if case .write(let offset, let bytes) = operation, !bytes.isEmpty {
                variants.append(DataVariant(applied: index, partial: .zeros))
                let boundaries = stride(from: (offset / 512 + 1) * 512, to: offset + bytes.count, by: 512).map { $0 }
                var chosen = Set<Int>()
                if let first = boundaries.first { chosen.insert(first) }
                if let last = boundaries.last { chosen.insert(last) }
                if !boundaries.isEmpty { chosen.insert(boundaries[boundaries.count / 2]) }
                for boundary in chosen.sorted() { variants.append(DataVariant(applied: index, partial: .torn(at: boundary))) }
            }
            variants.append(DataVariant(applied: index + 1, partial: .none))
        }
        return variants
    }

    /// One crash state: which unsynced entry operations survived (by index into
    /// ``entryOperations``) and how much of each file's unsynced data.
    struct Choice {
        var entries: Set<Int>
        var data: [Int: DataVariant]
    }

    /// The crash states of this cut: all of them if there are at most `limit`, else `limit`
    /// sampled (seeded by `seed`), the two extremes included.
    func choices(limit: Int, seed: UInt64) -> (choices: [Choice], total: Double) {
        let pendingEntries = entryOperations.indices.filter { !entryOperations[$0].durable }
        let files = pendingData.keys.sorted()
        let fileVariants = files.map { Self.variants(pendingData[$0]!) }
        let total = pow(2.0, Double(pendingEntries.count)) * fileVariants.reduce(1.0) { $0 * Double($1.count) }
        func choice(entryBits: (Int) -> Bool, variant: (Int) -> Int) -> Choice {
            var chosen = Set<Int>()
            for (position, index) in pendingEntries.enumerated() where entryBits(position) { chosen.insert(index) }
            var data: [Int: DataVariant] = [:]
            for (position, file) in files.enumerated() { data[file] = fileVariants[position][variant(position)] }
            return Choice(entries: chosen, data: data)
        }
        if total <= Double(limit) {
            var result: [Choice] = []
            for number in 0..<Int(total) {
                var rest = number
                let bits = rest & ((1 << pendingEntries.count) - 1)
                rest >>= pendingEntries.count
                var digits: [Int] = []
                for variants in fileVariants {
                    digits.append(rest % variants.count)
                    rest /= variants.count
                }
                result.append(choice(entryBits: { bits & (1 << $0) != 0 }, variant: { digits[$0] }))
            }
            return (result, total)
        }
        var generator = SplitMix64(seed: seed)
        var result = [choice(entryBits: { _ in false }, variant: { _ in 0 }),
                      choice(entryBits: { _ in true }, variant: { fileVariants[$0].count - 1 })]
        while result.count < limit {
            let bits = pendingEntries.indices.map { _ in generator.next() & 1 == 1 }
            let digits = fileVariants.map { Int(generator.next() % UInt64($0.count)) }
            result.append(choice(entryBits: { bits[$0] }, variant: { digits[$0] }))
        }
        return (result, total)
    }

    /// A materialisable description of a crash state: paths relative to the world, each a
    /// directory (nil) or a file's bytes, in creation order (parents first); and the inode
    /// behind each file path, for hard links.
    func layout(_ choice: Choice) -> [(path: String, inode: Int, bytes: [UInt8]?)] {
        var entries: [Int: [String: Int]] = [0: [:]]
        for (index, item) in entryOperations.enumerated() where item.durable || choice.entries.contains(index) {
            switch item.operation {
            case .create(let directory, let name, let inode):
                entries[directory, default: [:]][name] = inode
            case .link(let directory, let name, let inode):
                entries[directory, default: [:]][name] = inode
            case .unlink(let directory, let name, let inode):
                if entries[directory]?[name] == inode { entries[directory]?[name] = nil }
            case .rename(let fromDirectory, let from, let toDirectory, let to, let inode):
                if entries[fromDirectory]?[from] == inode { entries[fromDirectory]?[from] = nil }
                entries[toDirectory, default: [:]][to] = inode
            }
        }
        var result: [(path: String, inode: Int, bytes: [UInt8]?)] = []
        var visited: Set<Int> = [0]
        func walk(_ directory: Int, _ prefix: String) {
            for (name, inode) in (entries[directory] ?? [:]).sorted(by: { $0.key < $1.key }) {
                let path = prefix.isEmpty ? name : "\(prefix)/\(name)"
                if isDirectory[inode] == true {
                    guard visited.insert(inode).inserted else { continue }  // a directory has one name
                    result.append((path, inode, nil))
                    walk(inode, path)
                } else {
                    result.append((path, inode, fileBytes(inode, choice)))
                }
            }
        }
        walk(0, "")
        return result
    }

    private func fileBytes(_ inode: Int, _ choice: Choice) -> [UInt8] {
        var bytes = data[inode] ?? []
        guard let pending = pendingData[inode], let variant = choice.data[inode] else { return bytes }
        for operation in pending.prefix(variant.applied) { Self.apply(operation, to: &bytes) }
        guard variant.applied < pending.count, case .write(let offset, let written) = pending[variant.applied] else { return bytes }
        switch variant.partial {
        case .none: break
        case .zeros:
            if bytes.count < offset + written.count { bytes.append(contentsOf: repeatElement(0, count: offset + written.count - bytes.count)) }
        case .torn(let boundary):
            Self.apply(.write(offset: offset, bytes: Array(written.prefix(boundary - offset))), to: &bytes)
        }
        return bytes
    }

    /// Writes `layout` below `root` (which exists), and the SQLite snapshot where its directory
    /// exists. Files get their recorded mode; a second name of a file becomes a hard link.
    func materialise(_ layout: [(path: String, inode: Int, bytes: [UInt8]?)], snapshot: [String: [UInt8]]?, at root: String) throws {
        var firstPath: [Int: String] = [:]
        for item in layout {
            let path = "\(root)/\(item.path)"
            guard let bytes = item.bytes else {
                guard mkdir(path, 0o770) == 0 else { throw PowerLossError("mkdir \(path): errno \(errno)") }
                continue
            }
            if let first = firstPath[item.inode] {
                guard Glibc.link(first, path) == 0 else { throw PowerLossError("link \(path): errno \(errno)") }
                continue
            }
            firstPath[item.inode] = path
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes),
                                                 attributes: [.posixPermissions: Int(modes[item.inode] ?? 0o640)]) else {
                throw PowerLossError("create \(path)")
            }
        }
        for (relative, bytes) in snapshot ?? [:] {
            let path = "\(root)/\(relative)"
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: (path as NSString).deletingLastPathComponent, isDirectory: &isDirectory),
                  isDirectory.boolValue else { continue }
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o660]) else {
                throw PowerLossError("create \(path)")
            }
        }
    }
}

/// A failure of the simulator itself (not of the product).
struct PowerLossError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A small, seedable generator (SplitMix64): the same seed samples the same crash states.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
