import Foundation
import Rentals

/// Pluggable delivery: runs an operator's command for each notification, in any language.
///
/// The command line is run by `/bin/sh -c`; it gets the notification as JSON on stdin (the
/// documented ``CustomerNotification`` form) and `SPOOL_EVENT_ID`, `SPOOL_REQUEST_ID` and
/// `SPOOL_NOTIFICATION_KIND` in its environment. Exit 0 means delivered; any other exit, or
/// running past the timeout (its whole process group then gets `SIGTERM`, and `SIGKILL` after a
/// grace), means "retry later". The hook runs in its own process group; whatever it leaves
/// running there when it exits is killed (finish your work before exiting). The event id lets
/// the hook make its own side effects idempotent.
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

    /// Runs the hook for `notification`; returns within `timeout` plus a grace of at most two
    /// seconds, whatever the hook does (see ``HookProcess``).
    ///
    /// - Throws: ``Failure``.
    public func deliver(_ notification: CustomerNotification) throws {
        var environment = ProcessInfo.processInfo.environment
        environment["SPOOL_EVENT_ID"] = notification.eventId
        environment["SPOOL_REQUEST_ID"] = notification.request.id
        environment["SPOOL_NOTIFICATION_KIND"] = notification.kind.rawValue
        let process = HookProcess(command: command, environment: environment, timeout: timeout,
                                  grace: Swift.min(Duration.seconds(2), Swift.max(Duration.milliseconds(200), timeout)))
        let (outcome, last) = try process.run(input: canonicalJSON(notification) + [UInt8(ascii: "\n")])
        let how: String
        switch outcome {
        case .exited(0): return
        case .exited(let status): how = "exited with \(status)"
        case .signalled(let signal): how = "killed by signal \(signal)"
        case .timedOut: how = "timed out after \(timeout)"
        }
        throw Failure(description: "hook \(how)" + (last.isEmpty ? "" : ": \(last)"))
    }
}
