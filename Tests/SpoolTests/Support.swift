import Foundation
import Testing
@testable import Spool

/// A fresh directory below this test run's scratch root. Tests keep their directories (so that a
/// failure can be inspected); each run removes the roots that earlier, finished runs left.
struct TemporaryDirectory {
    let path: String

    private static let runRoot: String = {
        let base = NSTemporaryDirectory() + "spool-tests"
        let manager = FileManager.default
        try? manager.createDirectory(atPath: base, withIntermediateDirectories: true)
        for name in (try? manager.contentsOfDirectory(atPath: base)) ?? [] {
            if let pid = Int32(name), kill(pid, 0) != 0 { try? manager.removeItem(atPath: "\(base)/\(name)") }
        }
        let root = "\(base)/\(getpid())"
        try? manager.createDirectory(atPath: root, withIntermediateDirectories: true)
        return root
    }()

    init(_ label: String = "t") {
        var bytes = Array("\(Self.runRoot)/\(label).XXXXXX".utf8CString)
        guard let result = mkdtemp(&bytes) else { fatalError("mkdtemp failed") }
        path = String(cString: result)
    }

    func sub(_ name: String) -> String { "\(path)/\(name)" }
}

/// A spool in a fresh temporary directory.
func makeSpool(calls: FileSystemCalls = .live, maxItemBytes: Int = 1 << 20) throws -> (TemporaryDirectory, Spool) {
    let directory = TemporaryDirectory()
    var configuration = Spool.Configuration()
    configuration.calls = calls
    configuration.maxItemBytes = maxItemBytes
    let spool = try Spool(path: directory.sub("spool"), create: true, configuration: configuration)
    return (directory, spool)
}

/// Files (recursively) below `path`, relative to it, sorted.
func filesBelow(_ path: String) -> [String] {
    guard let enumerator = FileManager.default.enumerator(atPath: path) else { return [] }
    var files: [String] = []
    while let name = enumerator.nextObject() as? String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: "\(path)/\(name)", isDirectory: &isDirectory), !isDirectory.boolValue {
            files.append(name)
        }
    }
    return files.sorted()
}

/// The directory holding the built executables (next to the test bundle).
func productsDirectory() -> String {
    let candidates = [Bundle.main.bundlePath, CommandLine.arguments.first ?? ""].map { URL(fileURLWithPath: $0) }
    for candidate in candidates {
        var url = candidate
        for _ in 0..<4 {
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("spool-exerciser").path) { return url.path }
            url = url.deletingLastPathComponent()
        }
    }
    return ".build/debug"
}

/// A child process whose stdout and stderr are drained continuously (a daemon that logs a lot
/// must never block on a full pipe) and collected.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    private let output = Collector()
    private let errors = Collector()

    init(_ executable: String, _ arguments: [String], environment extra: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "\(productsDirectory())/\(executable)")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        output.drain(outPipe.fileHandleForReading)
        errors.drain(errPipe.fileHandleForReading)
    }

    /// Waits until the child has written something to stdout (true), or `seconds` passed or it
    /// exited without writing (false).
    func waitForOutput(seconds: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if output.hasData { return true }
            if !process.isRunning { return output.hasData }
            usleep(1_000)
        }
        return output.hasData
    }

    /// Waits for exit and for the end of both streams; returns status, stdout and stderr.
    func finish() -> (status: Int32, output: String, errors: String) {
        process.waitUntilExit()
        return (process.terminationStatus, output.text(), errors.text())
    }

    private final class Collector: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        private let done = DispatchSemaphore(value: 0)

        func drain(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    lock.lock()
                    data.append(chunk)
                    lock.unlock()
                }
                done.signal()
            }
        }

        var hasData: Bool {
            lock.lock()
            defer { lock.unlock() }
            return !data.isEmpty
        }

        func text() -> String {
            done.wait()
            lock.lock()
            defer { lock.unlock() }
            return String(decoding: data, as: UTF8.self)
        }
    }
}

/// A deterministic generator for property tests (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The processes below `root` (children, grandchildren, …), from `/proc`.
func descendants(of root: Int32) -> [Int32] {
    var parents: [Int32: Int32] = [:]
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        if fields.count > 1, let parent = Int32(fields[1]) { parents[pid] = parent }
    }
    var result: [Int32] = [], frontier = [root]
    while let next = frontier.popLast() {
        for (pid, parent) in parents where parent == next {
            result.append(pid)
            frontier.append(pid)
        }
    }
    return result
}

/// The executable file of process `pid`, from `/proc`.
func executable(_ pid: Int32) -> String? {
    try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
}
