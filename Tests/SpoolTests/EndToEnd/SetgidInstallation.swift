import Foundation
import Testing

/// `spoolctl` installed setgid to a test group, as `scripts/install` installs it, with its own
/// system configuration; for tests that run as root and act as ordinary users.
///
/// The setgid binary reads the system configuration only at its compiled-in path
/// `/etc/self-storage/spool.conf`, and a test must not change the host's `/etc`: every command
/// runs in a private mount namespace (`unshare --mount`) in which this installation's `etc`
/// directory is bind-mounted over `/etc/self-storage`. The only trace on the host is the empty
/// directory `/etc/self-storage`, created if it is missing and left (another suite running at
/// the same time may be using it as its mount point).
///
/// Accounts (made once, kept): group `spool-e2e` owns the spool; group `spool-ops-e2e` is the
/// operator group; `spool-alice` and `spool-bob` are ordinary users (each with a personal group
/// of the same name), `spool-carol` is an operator, `spool-daemon` has `spool-e2e` as its
/// primary group (as the `spool` user the daemons run as).
final class SetgidInstallation {
    static let spoolGroup = "spool-e2e", operatorGroup = "spool-ops-e2e"
    let base: String
    var binary: String { "\(base)/bin/spoolctl" }
    var spool: String { "\(base)/spool" }
    var etc: String { "\(base)/etc" }

    /// An installation below `/tmp` (world-traversable) whose system configuration names its
    /// spool and the operator group, plus `settings`.
    init(_ label: String, settings: [String: String] = [:]) throws {
        for command in ["getent group \(Self.spoolGroup) || groupadd \(Self.spoolGroup)",
                        "getent group \(Self.operatorGroup) || groupadd \(Self.operatorGroup)",
                        "id spool-alice || useradd -M -s /bin/sh spool-alice",
                        "id spool-bob || useradd -M -s /bin/sh spool-bob",
                        "id spool-carol || useradd -M -s /bin/sh spool-carol",
                        "usermod -a -G \(Self.operatorGroup) spool-carol",
                        "id spool-daemon || useradd -M -s /bin/sh -g \(Self.spoolGroup) spool-daemon"] {
            try Self.require("flock /tmp/spool-e2e-accounts.lock sh -c '\(command)'")
        }
        base = "/tmp/spool-e2e-\(label)-\(getpid())"
        let products = productsDirectory()
        for command in ["rm -rf \(base)", "mkdir -p \(base)/bin \(base)/etc \(base)/spool", "chmod 755 \(base) \(base)/bin \(base)/etc",
                        "cp \(products)/spoolctl \(products)/spool-allocator \(products)/spool-notifier \(base)/bin/",
                        "chgrp \(Self.spoolGroup) \(base)/bin/spoolctl \(base)/spool",
                        "chmod 2755 \(base)/bin/spoolctl", "chmod 2770 \(base)/spool", "mkdir -p /etc/self-storage"] {
            try Self.require(command)
        }
        try writeSystemConfiguration(settings)
    }

    deinit {
        Self.sh("rm -rf \(base)")
    }

    /// Replaces the system configuration: the spool, the operator group and `settings`.
    func writeSystemConfiguration(_ settings: [String: String]) throws {
        var lines = ["spool_root = \(spool)", "operator_group = \(Self.operatorGroup)"]
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) { lines.append("\(key) = \(value)") }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: "\(etc)/spool.conf"))
        try Self.require("chmod 644 \(etc)/spool.conf")
    }

    /// Runs `command` (an argv; a leading `spoolctl` means the setgid binary) as `user` with
    /// only `environment` (and a plain PATH), inside the namespace that sees this installation's
    /// system configuration.
    func start(as user: String, _ command: [String], environment: [String: String] = [:]) throws -> ChildProcess {
        let argv = command.first == "spoolctl" ? [binary] + command.dropFirst() : command
        let variables = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SWIFT_BACKTRACE=enable=no"]
            + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let script = #"etc="$1"; user="$2"; shift 2; mount --bind "$etc" /etc/self-storage && exec runuser -u "$user" -- "$@""#
        return try ChildProcess("/usr/bin/unshare", ["--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh",
                                                     etc, user, "/usr/bin/env", "-i"] + variables + argv)
    }

    /// ``start(as:_:environment:)`` and waits for the end.
    func run(as user: String, _ command: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String, errors: String) {
        try start(as: user, command, environment: environment).finish()
    }

    /// Runs `spoolctl` as root (not restricted) on this spool.
    func asRoot(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        try ChildProcess(binary, arguments, environment: ["SPOOL_CONFIG": "\(etc)/spool.conf", "SPOOL_ROOT": ""]).finish()
    }

    /// Submits a request as `user`; returns its id.
    func submit(as user: String, customer: String) throws -> String {
        let result = try run(as: user, ["spoolctl", "submit", "--customer", customer, "--contact", customer, "--size", "S",
                                        "--from", "2099-01-01", "--months", "1", "--json"])
        try #require(result.status == 0, "submit as \(user): \(result.errors)")
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        return try #require(object?["id"] as? String)
    }

    @discardableResult
    static func sh(_ command: String) -> (status: Int32, output: String, errors: String) {
        guard let child = try? ChildProcess("/bin/sh", ["-c", command]) else { return (-1, "", "cannot run sh") }
        return child.finish()
    }

    static func require(_ command: String) throws {
        let result = sh(command)
        try #require(result.status == 0, "\(command): \(result.errors)")
    }
}
