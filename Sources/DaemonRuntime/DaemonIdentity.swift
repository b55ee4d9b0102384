import Spool

/// Which daemon this process is: its program name, its `--instance` and its version.
///
/// The instance (`[a-z0-9-]{1,32}`, default `main`) names the heartbeat file
/// (`heartbeat/<program>.<instance>.json`), appears in the log label (`allocator@blue`; just
/// `allocator` for `main`) and in `STATUS=`. Several instances may consume one spool (the
/// template unit `spool-allocator@.service`).
public struct DaemonIdentity: Sendable, Equatable {
    /// `spool-allocator` or `spool-notifier`.
    public var program: String
    public var instance: String
    /// The `--version` text, or `unknown`.
    public var version: String
    /// How often the heartbeat file and `STATUS=` are refreshed (``DaemonHeartbeat``).
    public var heartbeatInterval: Duration = .seconds(10)

    /// The default instance.
    public static let defaultInstance = "main"

    /// An identity, or nil when `instance` is not `[a-z0-9-]{1,32}`.
    public init?(program: String, instance: String = Self.defaultInstance, version: String = "") {
        guard Heartbeat.isValidInstance(instance) else { return nil }
        self.program = program
        self.instance = instance
        self.version = version.isEmpty ? "unknown" : version
    }

    /// The log label for a daemon labelled `label`: `label` for the main instance, else
    /// `label@instance`.
    public func logLabel(_ label: String) -> String { instance == Self.defaultInstance ? label : "\(label)@\(instance)" }
}
