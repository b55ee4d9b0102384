#if canImport(Glibc)
import Glibc
#endif
import Spool

/// The configuration every program of the system reads: one `key = value` file outside the
/// binaries (see `docs/operations.md`), with defaults for every key.
///
/// Lookup of the file: an explicit path (`--config`), else `SPOOL_CONFIG`, else
/// `/etc/self-storage/spool.conf` if it exists, else defaults only. Lookup of the spool root:
/// `--spool`, else `SPOOL_ROOT`, else `spool_root` from the file, else `./spool`.
///
/// In restricted mode (``ProcessRights/isRestricted``: a setgid `spoolctl` run by an ordinary
/// user, or a daemon it started) the caller is not trusted: only the system configuration
/// ``defaultPath`` is read, and it must exist and name an absolute `spool_root`; another file
/// or spool root is accepted only if the system configuration lists it in
/// `alternate_config_files` or `alternate_spool_roots`; `operator_group` and the two lists
/// always come from the system configuration. A refused file or root gets one message whether
/// it exists, is unreadable or is malformed, so nobody can probe the private spool with it.
public struct SystemConfiguration: Sendable, Equatable {
    /// The spool root directory.
    public var spoolRoot = "./spool"
    /// The unit size classes and their floor areas.
    public var sizes: [SizeClass] = SizeClass.defaults
    /// Longest rental period accepted, in months.
    public var maxPeriodMonths = 36
    /// Allocator backlog at which intake starts refusing submissions.
    public var breakerHighWater = 1000
    /// Backlog below which a half-open breaker closes again.
    public var breakerLowWater = 200
    /// How long the breaker stays open before a half-open probe.
    public var breakerCooldownSeconds = 30
    /// Consecutive allocator failures that open the breaker.
    public var breakerFailureThreshold = 5
    /// Most allocator worker threads per process.
    public var allocatorMaxWorkers = 4
    /// Most notifier worker threads per process.
    public var notifierMaxWorkers = 4
    /// Attempts before an item is dead-lettered.
    public var maxAttempts = 8
    /// Root of the per-customer Maildirs; empty means `<spool>/maildir`.
    public var maildirRoot = ""
    /// A command run for each notification (the event as JSON on stdin); empty for none.
    public var notifyHook = ""
    /// Seconds a hook may run before it is killed and the delivery retried.
    public var hookTimeoutSeconds = 30
    /// Members of this Unix group may see and cancel every request.
    public var operatorGroup = "storage-ops"
    /// The `From:` of notification messages.
    public var sender = "Self Storage <noreply@localhost>"
    /// Other configuration files a setgid `spoolctl` may be pointed at (absolute paths, exactly
    /// as given to `--config`); read from the system configuration only.
    public var alternateConfigFiles: [String] = []
    /// Other spool roots a setgid `spoolctl` may be pointed at (absolute paths, exactly as
    /// given to `--spool`); read from the system configuration only.
    public var alternateSpoolRoots: [String] = []
    /// Days a finished request is kept after it finished before compaction drops it from the
    /// journal and the status index (``RetentionPolicy``); 0 keeps every request forever.
    public var retentionDays = 0
    /// Whether compaction archives the requests it drops (`archive/` below the spool root)
    /// before they leave the journal.
    public var retentionArchive = true
    /// The ISO 4217 code prices are in (key `currency`, e.g. `EUR`); nil (the default, or an
    /// empty value) turns prices off: every price is null. Rates are per currency
    /// (`spoolctl prices set`); a rental keeps the currency it was priced in.
    public var currency: String?

    /// The environment variables the configuration lookup reads; a restricted process keeps
    /// them through its environment scrub (``SpoolProcess/prepare(keeping:)``) and validates them
    /// like `--config` and `--spool`.
    public static let environmentVariables: Set<String> = ["SPOOL_CONFIG", "SPOOL_ROOT"]

    /// The defaults.
    public init() {}

    /// The default location of the configuration file.
    public static let defaultPath = "/etc/self-storage/spool.conf"

    /// Loads the configuration as described on the type; `explicitPath` is `--config`,
    /// `spoolOverride` is `--spool`.
    ///
    /// - Throws: ``ConfigurationError`` for an unreadable file (explicitly named), an unknown key
    ///   or a bad value, naming the file and line; in restricted mode also (with
    ///   ``ConfigurationError/refused`` set) for a file or spool root the system configuration
    ///   does not list, and for a missing system configuration or a relative spool root.
    public static func load(explicitPath: String? = nil, spoolOverride: String? = nil,
                            environment: [String: String] = currentEnvironment()) throws(ConfigurationError) -> SystemConfiguration {
        try load(explicitPath: explicitPath, spoolOverride: spoolOverride, environment: environment, restricted: ProcessRights.isRestricted)
    }

    /// ``load(explicitPath:spoolOverride:environment:)`` with restricted mode given (for tests).
    public static func load(explicitPath: String? = nil, spoolOverride: String? = nil,
                            environment: [String: String] = currentEnvironment(),
                            restricted: Bool) throws(ConfigurationError) -> SystemConfiguration {
        let path = explicitPath ?? environment["SPOOL_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let root = spoolOverride.flatMap { $0.isEmpty ? nil : $0 } ?? environment["SPOOL_ROOT"].flatMap { $0.isEmpty ? nil : $0 }
        if restricted { return try loadRestricted(path: path, root: root, systemPath: defaultPath) }
        var configuration = SystemConfiguration()
        if let path {
            guard let text = try readText(path) else { throw ConfigurationError(missing: path) }
            try configuration.apply(text, file: path)
        } else if let text = try readText(defaultPath) {
            try configuration.apply(text, file: defaultPath)
        }
        if let root { configuration.spoolRoot = root }
        return configuration
    }

    /// The lookup for an untrusted caller (see the type). `systemPath` is ``defaultPath`` except
    /// in unit tests.
    static func loadRestricted(path: String?, root: String?, systemPath: String) throws(ConfigurationError) -> SystemConfiguration {
        let rule = "a setgid spoolctl run by an ordinary user reads only \(systemPath)"
        var system = SystemConfiguration()
        guard let systemText = try? readText(systemPath) else {
            throw ConfigurationError(message: "cannot read the system configuration \(systemPath); \(rule)", refused: true)
        }
        try system.apply(systemText, file: systemPath)
        var configuration = system
        if let path, path != systemPath {
            guard system.alternateConfigFiles.contains(path) else {
                throw ConfigurationError(message: "configuration file \(shortened(path)) is not permitted: \(rule) and the files its alternate_config_files lists",
                                         refused: true)
            }
            guard let text = try readText(path) else { throw ConfigurationError(missing: path) }
            configuration = SystemConfiguration()
            try configuration.apply(text, file: path)
            configuration.operatorGroup = system.operatorGroup
            configuration.alternateConfigFiles = system.alternateConfigFiles
            configuration.alternateSpoolRoots = system.alternateSpoolRoots
        }
        if let root, trimmingSlashes(root) != trimmingSlashes(configuration.spoolRoot) {
            guard system.alternateSpoolRoots.contains(where: { trimmingSlashes($0) == trimmingSlashes(root) }) else {
                throw ConfigurationError(message: "spool root \(shortened(root)) is not permitted: \(rule), its spool_root and its alternate_spool_roots",
                                         refused: true)
            }
            configuration.spoolRoot = root
        }
        guard configuration.spoolRoot.hasPrefix("/") else {
            throw ConfigurationError(message: "spool_root \(configuration.spoolRoot) is not an absolute path; a setgid spoolctl needs one in \(systemPath)",
                                     refused: true)
        }
        return configuration
    }

    /// `path` without trailing slashes (but `/` stays `/`), for comparing spool roots.
    private static func trimmingSlashes(_ path: String) -> String {
        var result = Substring(path)
        while result.count > 1, result.hasSuffix("/") { result = result.dropLast() }
        return String(result)
    }

    /// A caller-supplied path for an error line: at most 100 characters.
    static func shortened(_ text: String) -> String {
        text.count <= 100 ? text : String(text.prefix(100)) + "…"
    }

    /// A comma-separated list of absolute paths, or nil if one is not absolute.
    private static func pathList(_ value: String) -> [String]? {
        let paths = value.split(separator: ",").map { $0.trimmingSpaces }.filter { !$0.isEmpty }
        return paths.allSatisfy { $0.hasPrefix("/") } ? paths : nil
    }

    /// The Maildir root in effect.
    public var effectiveMaildirRoot: String { maildirRoot.isEmpty ? "\(spoolRoot)/maildir" : maildirRoot }

    /// The size class named `name` (case-insensitive), if configured.
    public func size(named name: String) -> SizeClass? {
        sizes.first { $0.name == name.uppercased() }
    }

    mutating func apply(_ text: String, file: String) throws(ConfigurationError) {
        var lines: [String: [Int]] = [:]
        try apply(text, file: file, recording: &lines)
    }

    /// Applies the `key = value` lines of `text` (read from `file`, named in errors) and adds
    /// to `lines` the line numbers (from 1) that set each key, in order: a key set twice is
    /// allowed and the last line wins, as in Postfix's `main.cf` (`spoolctl config check`
    /// warns). A leading byte order mark is skipped; LF, CRLF and CR line ends are accepted.
    mutating func apply(_ text: String, file: String, recording lines: inout [String: [Int]]) throws(ConfigurationError) {
        var text = Substring(text)
        if text.unicodeScalars.first == "\u{FEFF}" { text = Substring(text.unicodeScalars.dropFirst()) }
        // Any line break ends a line: "\r\n" is one Character, so splitting at "\n" alone kept a
        // CRLF file as one line whose first value swallowed the rest of the file.
        for (lineIndex, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigurationError(message: "\(file):\(lineIndex + 1): expected key = value")
            }
            let key = line[..<equals].trimmingSpaces, value = line[line.index(after: equals)...].trimmingSpaces
            func integer(_ range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
                guard let number = Int(value), range.contains(number) else {
                    throw ConfigurationError(message: "\(file):\(lineIndex + 1): \(key) must be a whole number in \(range.lowerBound)...\(range.upperBound)")
                }
                return number
            }
            switch key {
            case "spool_root": spoolRoot = value
            case "sizes":
                guard let parsed = SizeClass.parseList(value) else {
                    throw ConfigurationError(message: "\(file):\(lineIndex + 1): sizes must look like S:1.5, M:3, L:6")
                }
                sizes = parsed
            case "max_period_months": maxPeriodMonths = try integer(1...1200)
            case "breaker_high_water": breakerHighWater = try integer(1...100_000_000)
            case "breaker_low_water": breakerLowWater = try integer(0...100_000_000)
            case "breaker_cooldown_seconds": breakerCooldownSeconds = try integer(1...86_400)
            case "breaker_failure_threshold": breakerFailureThreshold = try integer(1...1_000_000)
            case "allocator_max_workers": allocatorMaxWorkers = try integer(1...64)
            case "notifier_max_workers": notifierMaxWorkers = try integer(1...64)
            case "max_attempts": maxAttempts = try integer(1...1000)
            case "maildir_root": maildirRoot = value
            case "notify_hook": notifyHook = value
            case "hook_timeout_seconds": hookTimeoutSeconds = try integer(1...3600)
            case "operator_group": operatorGroup = value
            case "sender": sender = value
            case "retention_days": retentionDays = try integer(0...36_500)
            case "retention_archive":
                guard let flag = ["yes": true, "no": false][value] else {
                    throw ConfigurationError(message: "\(file):\(lineIndex + 1): retention_archive must be yes or no")
                }
                retentionArchive = flag
            case "currency":
                guard value.isEmpty || Currency.isValidCode(value) else {
                    throw ConfigurationError(message: "\(file):\(lineIndex + 1): currency must be an ISO 4217 code of three upper-case letters (EUR, USD, JPY) or empty for no prices")
                }
                currency = value.isEmpty ? nil : value
            case "alternate_config_files", "alternate_spool_roots":
                guard let paths = Self.pathList(value) else {
                    throw ConfigurationError(message: "\(file):\(lineIndex + 1): \(key) must be a comma-separated list of absolute paths")
                }
                if key == "alternate_config_files" { alternateConfigFiles = paths } else { alternateSpoolRoots = paths }
            default: throw ConfigurationError(message: "\(file):\(lineIndex + 1): unknown key \(key)")
            }
            lines[key, default: []].append(lineIndex + 1)
        }
        guard breakerLowWater < breakerHighWater else {
            throw ConfigurationError(message: "\(file): breaker_low_water must be below breaker_high_water")
        }
    }

    /// The exit code of a daemon whose configuration could not be loaded: 77 (EX_NOPERM) when
    /// refused, 74 (EX_IOERR, restarted) when it could not be read for an I/O reason, else 78
    /// (EX_CONFIG).
    public static func exitCode(for error: ConfigurationError) -> Int32 {
        error.refused ? 77 : error.ioErrno != nil ? 74 : 78
    }

    /// The process environment as a dictionary.
    public static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") { result[String(text[..<equals])] = String(text[text.index(after: equals)...]) }
            pointer += 1
        }
        return result
    }

    /// The text of the regular file at `path`: nil if there is no such file; throws if it
    /// exists but cannot be read whole (no permission, not a regular file, over 1 MiB, an I/O
    /// error part way), so a configuration is never used half read.
    ///
    /// With `asRealUser` the file is opened with the real group's rights, not the spool group's
    /// that a setgid `spoolctl` has (`spoolctl config check`: it must never show a file its
    /// caller could not read), and a permission refusal is ``ConfigurationError/refused``.
    /// Bytes that are not UTF-8 are refused with the line they are on.
    static func readText(_ path: String, asRealUser: Bool = false) throws(ConfigurationError) -> String? {
        let effective = getegid(), real = getgid()
        let switched = asRealUser && effective != real && setegid(real) == 0
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        let code = errno
        if switched, setegid(effective) != 0 { _exit(71) }  // never go on with the wrong rights
        guard fd >= 0 else {
            if code == ENOENT { return nil }
            let denied = code == EACCES || code == EPERM
            throw ConfigurationError(message: "cannot read configuration file \(shortened(path)): \(String(cString: strerror(code)))",
                                     refused: asRealUser && denied, ioErrno: denied ? nil : code)
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw ConfigurationError(message: "configuration file \(shortened(path)) is not a regular file")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count == 0 { break }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw ConfigurationError(message: "cannot read configuration file \(shortened(path)): \(String(cString: strerror(code)))",
                                         ioErrno: code == EACCES || code == EPERM ? nil : code)
            }
            bytes += buffer[..<count]
            if bytes.count > 1 << 20 { throw ConfigurationError(message: "configuration file \(shortened(path)) is over 1 MiB") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
            let line = 1 + (lines.firstIndex { String(validating: $0, as: UTF8.self) == nil } ?? 0)
            throw ConfigurationError(message: "\(shortened(path)):\(line): not UTF-8 text")
        }
        return text
    }
}

/// A configuration file that cannot be used; the message names the file and line.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public let message: String
    /// True when a restricted process refuses what its caller asked for (exit 77, not 65).
    public let refused: Bool
    /// The `errno` when the file could not be read for an I/O reason (`EIO`, `EMFILE`, …, not a
    /// permission): the file may be fine, so this is an I/O error (74), not bad data (65).
    public let ioErrno: Int32?

    /// True when the file named does not exist (`spoolctl config check` exits 66 for it).
    public let noSuchFile: Bool

    /// An error; `refused` and `ioErrno` as on the properties.
    public init(message: String, refused: Bool = false, ioErrno: Int32? = nil) {
        self.message = message
        self.refused = refused
        self.ioErrno = ioErrno
        noSuchFile = false
    }

    /// The file at `path` does not exist.
    init(missing path: String) {
        message = "cannot read configuration file \(SystemConfiguration.shortened(path)): no such file"
        refused = false
        ioErrno = nil
        noSuchFile = true
    }

    public var description: String { message }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}

/// A unit size class, e.g. `M` with 3 m² of floor area.
public struct SizeClass: Hashable, Sendable, Codable {
    /// Its name as customers use it (`S`, `M`, `L`, `XL`).
    public let name: String
    /// Floor area in square metres.
    public let area: Double

    /// A size class.
    public init(name: String, area: Double) {
        self.name = name
        self.area = area
    }

    /// The default classes.
    public static let defaults = [
        SizeClass(name: "S", area: 1.5), SizeClass(name: "M", area: 3),
        SizeClass(name: "L", area: 6), SizeClass(name: "XL", area: 10),
    ]

    static func parseList(_ text: String) -> [SizeClass]? {
        var classes: [SizeClass] = []
        for item in text.split(separator: ",") {
            let parts = item.split(separator: ":")
            guard parts.count == 2, let area = Double(parts[1].trimmingSpaces), area > 0, area.isFinite else { return nil }
            let name = parts[0].trimmingSpaces.uppercased()
            guard !name.isEmpty, name.count <= 8, name.allSatisfy({ $0.isLetter || $0.isNumber }),
                  !classes.contains(where: { $0.name == name }) else { return nil }
            classes.append(SizeClass(name: name, area: area))
        }
        return classes.isEmpty ? nil : classes.sorted { $0.area < $1.area }
    }
}
