#if canImport(Glibc)
import Glibc
#endif

/// The configuration every program of the system reads: one `key = value` file outside the
/// binaries (see `docs/operations.md`), with defaults for every key.
///
/// Lookup of the file: an explicit path (`--config`), else `SPOOL_CONFIG`, else
/// `/etc/self-storage/spool.conf` if it exists, else defaults only. Lookup of the spool root:
/// `--spool`, else `SPOOL_ROOT`, else `spool_root` from the file, else `./spool`.
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

    /// The defaults.
    public init() {}

    /// The default location of the configuration file.
    public static let defaultPath = "/etc/self-storage/spool.conf"

    /// Loads the configuration as described on the type; `explicitPath` is `--config`,
    /// `spoolOverride` is `--spool`.
    ///
    /// - Throws: ``ConfigurationError`` for an unreadable file (explicitly named), an unknown key
    ///   or a bad value, naming the file and line.
    public static func load(explicitPath: String? = nil, spoolOverride: String? = nil,
                            environment: [String: String] = currentEnvironment()) throws(ConfigurationError) -> SystemConfiguration {
        var configuration = SystemConfiguration()
        let path = explicitPath ?? environment["SPOOL_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        if let path {
            guard let text = readText(path) else { throw ConfigurationError(message: "cannot read configuration file \(path)") }
            try configuration.apply(text, file: path)
        } else if let text = readText(defaultPath) {
            try configuration.apply(text, file: defaultPath)
        }
        if let root = environment["SPOOL_ROOT"], !root.isEmpty { configuration.spoolRoot = root }
        if let spoolOverride, !spoolOverride.isEmpty { configuration.spoolRoot = spoolOverride }
        return configuration
    }

    /// The Maildir root in effect.
    public var effectiveMaildirRoot: String { maildirRoot.isEmpty ? "\(spoolRoot)/maildir" : maildirRoot }

    /// The size class named `name` (case-insensitive), if configured.
    public func size(named name: String) -> SizeClass? {
        sizes.first { $0.name == name.uppercased() }
    }

    mutating func apply(_ text: String, file: String) throws(ConfigurationError) {
        for (lineIndex, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
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
            default: throw ConfigurationError(message: "\(file):\(lineIndex + 1): unknown key \(key)")
            }
        }
        guard breakerLowWater < breakerHighWater else {
            throw ConfigurationError(message: "\(file): breaker_low_water must be below breaker_high_water")
        }
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

    private static func readText(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += buffer[..<count]
            if bytes.count > 1 << 20 { return nil }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A configuration file that cannot be used; the message names the file and line.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public let message: String
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
            guard parts.count == 2, let area = Double(parts[1].trimmingSpaces), area > 0 else { return nil }
            let name = parts[0].trimmingSpaces.uppercased()
            guard !name.isEmpty, name.count <= 8, name.allSatisfy({ $0.isLetter || $0.isNumber }),
                  !classes.contains(where: { $0.name == name }) else { return nil }
            classes.append(SizeClass(name: name, area: area))
        }
        return classes.isEmpty ? nil : classes.sorted { $0.area < $1.area }
    }
}
