import CBuildVersion

/// The version every program answers `--version` with (`<program> <version>`), and that the
/// daemons report (heartbeat, logs).
///
/// Stamped at build time from git by scripts/build-release (and so scripts/build-deb and
/// scripts/install): a Debian-version-safe string such as `0.0.412+g1a2b3c4d` or the `--version`
/// given to the script. A plain `swift build` (development) is not stamped and says `0.0.0-dev`.
/// The mechanism (a byte array patched in the linked program) is described in
/// Sources/CBuildVersion/version.c.
public enum BuildVersion {
    /// The stamped version, e.g. `0.0.412+g1a2b3c4d`; `0.0.0-dev` when unstamped.
    public static let current: String = String(cString: spool_build_version())

    /// What `--version` prints: `<program> <version>`, e.g. `spoolctl 0.0.412+g1a2b3c4d`.
    public static func text(program: String) -> String { "\(program) \(current)" }
}
