import Foundation
import Synchronization
@testable import Spool

/// One event of a recorded run, in the order it happened. File-system events name inodes by a
/// model number (not the kernel's, which is reused), so that a file staged in `tmp/` and renamed
/// elsewhere stays one file, whatever names survive a power loss.
enum PowerLossEvent: Sendable {
    /// A new file (`open` with `O_CREAT` that created it) or directory (`mkdir`) `name` in `directory`.
    case create(directory: Int, name: String, inode: Int, isDirectory: Bool, mode: mode_t)
    /// `rename`: atomic; durable once its target directory is synced.
    case rename(fromDirectory: Int, from: String, toDirectory: Int, to: String, inode: Int)
    /// `link`: a second name.
    case link(directory: Int, name: String, inode: Int)
    /// `unlink` (a file, or an empty directory with `AT_REMOVEDIR`).
    case unlink(directory: Int, name: String, inode: Int)
    /// `write` of `bytes` at `offset` (the file's size for an `O_APPEND` descriptor).
    case write(inode: Int, offset: Int, bytes: [UInt8])
    /// `ftruncate`.
    case truncate(inode: Int, length: Int)
    /// `fsync` of a file (its data) or a directory (its entries).
    case fsync(inode: Int)
    /// The SQLite files changed: snapshot number `index` of ``RecordingFileSystem/snapshots``.
    case sqlite(Int)
    /// The run acknowledged something (a submit or cancel returned) right here.
    case ack(PowerLossAck)

    /// Whether a cut just after this event can differ from a cut just before it.
    var changesState: Bool {
        switch self {
        case .sqlite: false
        default: true
        }
    }
}

/// What the run acknowledged to its caller, and so must survive any later power loss.
enum PowerLossAck: Sendable, Hashable {
    /// `IntakeService.submit` returned this request id (with the form, to resubmit it).
    case submitted(id: String, customer: String, idempotencyKey: String?)
    /// `IntakeService.cancel` returned `.requested` for this request.
    case cancelled(id: String)
}

/// A ``FileSystemCalls`` that runs the real calls (``FileSystemCalls/live``) on a real directory,
/// the "world" (the spool and the Maildir root below it), and records every operation that
/// changes what is on disk as a ``PowerLossEvent``, with paths resolved to model inodes.
///
/// It keeps a shadow of the world's namespace (directory inode → name → inode) and a table from
/// descriptor to inode, fed by `open` (`O_DIRECTORY` opens included) and `close`; a path given
/// with `AT_FDCWD` is resolved from the world's root. Files the seam did not create (SQLite's
/// files, their locks) are not modelled: operations on them are counted in ``untracked``.
///
/// SQLite files (the allocator store, the status index) are written by SQLite, not through the
/// seam. Before each recorded event the recorder compares their contents (CRC-32 of the main file
/// and the WAL) with the last snapshot and, when they changed, takes a new snapshot and records
/// ``PowerLossEvent/sqlite(_:)``: a cut after that event sees every transaction committed
/// before it. This is sound because SQLite makes a commit durable before it returns (WAL with
/// `synchronous=FULL`, checked by the test) and the recorded run is single-threaded, so no
/// transaction is in flight while a seam call runs.
final class RecordingFileSystem: Sendable {
    /// The world's root (absolute, no trailing slash); inode 0 in the model.
    let world: String
    /// SQLite main files to snapshot, relative to the world (their `-wal` is taken too).
    let databases: [String]
    /// For the simulator's self-test: directory `fsync`s run but are not recorded, as if the
    /// product never made them.
    let dropsDirectorySyncs: Bool

    private struct State {
        var events: [PowerLossEvent] = []
        /// Directory inode → entries, as they are now (mirrors the real file system).
        var entries: [Int: [String: Int]] = [0: [:]]
        var isDirectory: [Int: Bool] = [0: true]
        var descriptors: [Int32: Descriptor] = [:]
        var nextInode = 1
        var untracked = 0
        var snapshots: [[String: [UInt8]]] = []
        var signature: [String: UInt32] = [:]
    }

    private struct Descriptor {
        /// The model inode, or -1 outside the model.
        var inode: Int
        var append: Bool
        /// For a descriptor outside the model (an ancestor of the world): its absolute path.
        var path: String?
    }

    private let state = Mutex(State())
    private let live = FileSystemCalls.live

    init(world: String, databases: [String], dropsDirectorySyncs: Bool = false) {
        self.world = world
        self.databases = databases
        self.dropsDirectorySyncs = dropsDirectorySyncs
    }

    /// The events recorded so far.
    var events: [PowerLossEvent] { state.withLock { $0.events } }
    /// SQLite snapshots: relative path → bytes (main files and WALs).
    var snapshots: [[String: [UInt8]]] { state.withLock { $0.snapshots } }
    /// Mutating calls on files the model does not know (SQLite's own files reached by the seam).
    var untracked: Int { state.withLock { $0.untracked } }

    /// Records an acknowledgement (after snapshotting SQLite, so the cut sees its commits).
    func acknowledge(_ ack: PowerLossAck) { record(.ack(ack)) }

    /// Takes a last SQLite snapshot if the files changed since the last event.
    func finish() { state.withLock { snapshotIfChanged(&$0) } }

    private func record(_ event: PowerLossEvent) {
        state.withLock { state in
            snapshotIfChanged(&state)
            state.events.append(event)
        }
    }

    private func snapshotIfChanged(_ state: inout State) {
        var files: [String: [UInt8]] = [:]
        var signature: [String: UInt32] = [:]
        for database in databases {
            for path in [database, database + "-wal"] {
                guard let data = FileManager.default.contents(atPath: "\(world)/\(path)") else { continue }
                let bytes = [UInt8](data)
                files[path] = bytes
                signature[path] = CRC32.checksum(bytes)
            }
        }
        guard signature != state.signature else { return }
        state.signature = signature
        state.snapshots.append(files)
        state.events.append(.sqlite(state.snapshots.count - 1))
    }

    /// The inode of `name` relative to descriptor `directory` (or the world, for an absolute
    /// path with `AT_FDCWD`), and its parent: nil when outside the model.
    private func resolve(_ directory: Int32, _ name: String, _ state: State) -> (parent: Int, leaf: String)? {
        var current: Int
        var components: [Substring]
        if let absolute = absolutePath(directory, name, state) {
            guard absolute.hasPrefix(world + "/") else { return nil }
            current = 0
            components = absolute.dropFirst(world.count + 1).split(separator: "/")
        } else {
            guard let descriptor = state.descriptors[directory], descriptor.inode >= 0 else { return nil }
            current = descriptor.inode
            components = name.split(separator: "/")
        }
        guard let leaf = components.popLast() else { return nil }
        for component in components {
            guard let next = state.entries[current]?[String(component)], state.isDirectory[next] == true else { return nil }
            current = next
        }
        return (current, String(leaf))
    }

    /// The absolute path of `name` when it is given as one, or relative to a descriptor outside
    /// the model whose path is known; nil relative to a modelled directory.
    private func absolutePath(_ directory: Int32, _ name: String, _ state: State) -> String? {
        if name.hasPrefix("/") { return name }
        guard directory != AT_FDCWD, let descriptor = state.descriptors[directory], descriptor.inode < 0,
              let base = descriptor.path else { return nil }
        return base == "/" ? "/\(name)" : "\(base)/\(name)"
    }

    private func inode(of descriptor: Int32, _ state: State) -> Int? {
        guard let inode = state.descriptors[descriptor]?.inode, inode >= 0 else { return nil }
        return inode
    }

    /// The recording calls.
    var calls: FileSystemCalls {
        var calls = live
        let live = self.live
        calls.open = { [self] directory, name, flags, mode throws(SystemCallError) in
            let existed = (try? live.statusAt(directory, name)) != nil
            let fd = try live.open(directory, name, flags, mode)
            state.withLock { state in
                var inode = -1
                let absolute = absolutePath(directory, name, state)
                if absolute == world {
                    inode = 0
                } else if let (parent, leaf) = resolve(directory, name, state) {
                    if let known = state.entries[parent]?[leaf] {
                        inode = known
                    } else if !existed, flags & O_CREAT != 0 {
                        inode = state.nextInode
                        state.nextInode += 1
                        state.entries[parent, default: [:]][leaf] = inode
                        state.isDirectory[inode] = false
                        snapshotIfChanged(&state)
                        state.events.append(.create(directory: parent, name: leaf, inode: inode, isDirectory: false, mode: mode))
                    }
                }
                state.descriptors[fd] = Descriptor(inode: inode, append: flags & O_APPEND != 0, path: inode < 0 ? absolute : nil)
            }
            return fd
        }
        calls.close = { [self] fd throws(SystemCallError) in
            _ = state.withLock { $0.descriptors.removeValue(forKey: fd) }
            try live.close(fd)
        }
        calls.write = { [self] fd, bytes throws(SystemCallError) in
            let append = state.withLock { $0.descriptors[fd]?.append ?? false }
            let offset = append ? Int((try? live.status(fd).st_size) ?? 0) : Int(lseek(fd, 0, SEEK_CUR))
            let count = try live.write(fd, bytes)
            state.withLock { state in
                guard let inode = inode(of: fd, state) else { state.untracked += 1; return }
                snapshotIfChanged(&state)
                state.events.append(.write(inode: inode, offset: offset, bytes: Array(UnsafeRawBufferPointer(rebasing: bytes[0..<count]))))
            }
            return count
        }
        calls.truncate = { [self] fd, length throws(SystemCallError) in
            try live.truncate(fd, length)
            state.withLock { state in
                guard let inode = inode(of: fd, state) else { state.untracked += 1; return }
                snapshotIfChanged(&state)
                state.events.append(.truncate(inode: inode, length: Int(length)))
            }
        }
        calls.fsync = { [self] fd throws(SystemCallError) in
            try live.fsync(fd)
            state.withLock { state in
                guard let inode = inode(of: fd, state) else { return }  // outside the world
                if dropsDirectorySyncs, state.isDirectory[inode] == true { return }
                snapshotIfChanged(&state)
                state.events.append(.fsync(inode: inode))
            }
        }
        calls.makeDirectory = { [self] directory, name, mode throws(SystemCallError) in
            try live.makeDirectory(directory, name, mode)
            state.withLock { state in
                guard let (parent, leaf) = resolve(directory, name, state) else { return }
                let inode = state.nextInode
                state.nextInode += 1
                state.entries[parent, default: [:]][leaf] = inode
                state.entries[inode] = [:]
                state.isDirectory[inode] = true
                snapshotIfChanged(&state)
                state.events.append(.create(directory: parent, name: leaf, inode: inode, isDirectory: true, mode: mode))
            }
        }
        calls.rename = { [self] fromDirectory, from, toDirectory, to throws(SystemCallError) in
            try live.rename(fromDirectory, from, toDirectory, to)
            state.withLock { state in
                guard let source = resolve(fromDirectory, from, state), let target = resolve(toDirectory, to, state),
                      let inode = state.entries[source.parent]?[source.leaf] else { state.untracked += 1; return }
                state.entries[source.parent]?[source.leaf] = nil
                state.entries[target.parent, default: [:]][target.leaf] = inode
                snapshotIfChanged(&state)
                state.events.append(.rename(fromDirectory: source.parent, from: source.leaf, toDirectory: target.parent, to: target.leaf, inode: inode))
            }
        }
        calls.link = { [self] fromDirectory, from, toDirectory, to throws(SystemCallError) in
            try live.link(fromDirectory, from, toDirectory, to)
            state.withLock { state in
                guard let source = resolve(fromDirectory, from, state), let target = resolve(toDirectory, to, state),
                      let inode = state.entries[source.parent]?[source.leaf] else { state.untracked += 1; return }
                state.entries[target.parent, default: [:]][target.leaf] = inode
                snapshotIfChanged(&state)
                state.events.append(.link(directory: target.parent, name: target.leaf, inode: inode))
            }
        }
        calls.unlink = { [self] directory, name, flags throws(SystemCallError) in
            try live.unlink(directory, name, flags)
            state.withLock { state in
                guard let (parent, leaf) = resolve(directory, name, state), let inode = state.entries[parent]?[leaf] else {
                    state.untracked += 1
                    return
                }
                state.entries[parent]?[leaf] = nil
                snapshotIfChanged(&state)
                state.events.append(.unlink(directory: parent, name: leaf, inode: inode))
            }
        }
        return calls
    }
}
