import Foundation
import Intake

/// Pluggable delivery: runs an operator's command for each notification, in any language.
///
/// The command line is run by `/bin/sh -c`; it gets the notification as JSON on stdin (the
/// documented ``CustomerNotification`` form) and `SPOOL_EVENT_ID`, `SPOOL_REQUEST_ID` and
/// `SPOOL_NOTIFICATION_KIND` in its environment. Exit 0 means delivered; any other exit, or
/// running past the timeout (it is then killed), means "retry later". The event id lets the
/// hook make its own side effects idempotent.
public struct HookDelivery: Sendable {
    /// The command line.
    public let command: String
    /// How long it may run.
    public let timeout: Duration

    /// A hook.
    public init(command: String, timeout: Duration) {
        self.command = command
        self.timeout = timeout
    }

    /// Why a hook run failed: its exit status or the timeout, and the last line it wrote to stderr.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs the hook for `notification`.
    ///
    /// - Throws: ``Failure``.
    public func deliver(_ notification: CustomerNotification) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        var environment = ProcessInfo.processInfo.environment
        environment["SPOOL_EVENT_ID"] = notification.eventId
        environment["SPOOL_REQUEST_ID"] = notification.request.id
        environment["SPOOL_NOTIFICATION_KIND"] = notification.kind.rawValue
        process.environment = environment
        let input = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch { throw Failure(description: "hook cannot start: \(error)") }
        let stderrText = ErrorCollector(errors.fileHandleForReading)
        try? input.fileHandleForWriting.write(contentsOf: Data(canonicalJSON(notification) + [UInt8(ascii: "\n")]))
        try? input.fileHandleForWriting.close()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            let grace = ContinuousClock.now + .seconds(2)
            while process.isRunning && ContinuousClock.now < grace { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            throw Failure(description: "hook timed out after \(timeout)")
        }
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let how = process.terminationReason == .exit ? "exited with \(process.terminationStatus)" : "killed by signal \(process.terminationStatus)"
            let last = stderrText.lastLine()
            throw Failure(description: "hook \(how)" + (last.isEmpty ? "" : ": \(last)"))
        }
    }
}

/// Reads a pipe to its end on a background thread, keeping the last 4 KiB.
private final class ErrorCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var tail = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.lock()
                tail.append(chunk)
                if tail.count > 4096 { tail = tail.suffix(4096) }
                lock.unlock()
            }
            done.signal()
        }
    }

    func lastLine() -> String {
        _ = done.wait(timeout: .now() + 1)
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: tail, as: UTF8.self).split(separator: "\n").last.map { String($0.prefix(300)) } ?? ""
    }
}
