#if canImport(Glibc)
import Glibc
#endif

/// Where a setting's value comes from.
public enum ConfigurationSource: Sendable, Equatable, CustomStringConvertible {
    /// The built-in default.
    case defaultValue
    /// A line of a configuration file (the last one that sets the key).
    case file(String, line: Int)
    /// An environment variable (`SPOOL_ROOT`, `SPOOL_CONFIG`).
    case environment(String)
    /// A command-line option (`--spool`, `--config`).
    case flag(String)
    /// The file given to `spoolctl config check FILE`.
    case argument
    /// The compiled-in location ``SystemConfiguration/defaultPath``.
    case defaultLocation

    /// `default`, `file PATH:LINE`, `environment NAME`, `flag --NAME`, `argument`, `default location`.
    public var description: String {
        switch self {
        case .defaultValue: "default"
        case .file(let path, let line): "file \(path):\(line)"
        case .environment(let name): "environment \(name)"
        case .flag(let name): "flag \(name)"
        case .argument: "argument"
        case .defaultLocation: "default location"
        }
    }

    /// `default`, `file`, `environment`, `flag`, `argument` or `default_location` (for JSON).
    public var kind: String {
        switch self {
        case .defaultValue: "default"
        case .file: "file"
        case .environment: "environment"
        case .flag: "flag"
        case .argument: "argument"
        case .defaultLocation: "default_location"
        }
    }
}

/// What `spoolctl config check` reports: the configuration in effect, each key's value and
/// source, and warnings about settings that are valid but probably not meant.
public struct ConfigurationReport: Sendable {
    /// One key of the configuration.
    public struct Setting: Sendable, Equatable {
        /// The key as written in a file (`spool_root`).
        public let key: String
        /// The value as it would be written in a file.
        public let value: String
        /// Where it comes from.
        public let source: ConfigurationSource
    }

    /// The configuration a program would use.
    public let configuration: SystemConfiguration
    /// The configuration file read (nil: none, defaults only).
    public let file: String?
    /// How that file was chosen (nil with no file).
    public let fileSource: ConfigurationSource?
    /// Every key, in declaration order.
    public let settings: [Setting]
    /// One line each, `FILE:LINE: message` where a line is to blame.
    public let warnings: [String]
}

extension SystemConfiguration {
    /// Every key with its value as a file would write it, in declaration order. Derived from the
    /// stored properties (`retentionDays` is `retention_days`), so a key added to the type is
    /// listed without further code; `ConfigCheckTests` checks that each one parses back.
    public var keyValues: [(key: String, value: String)] {
        Mirror(reflecting: self).children.compactMap { child in
            guard let label = child.label else { return nil }
            return (Self.snakeCase(label), Self.fileText(child.value))
        }
    }

    static func snakeCase(_ name: String) -> String {
        var result = ""
        for character in name {
            if character.isUppercase {
                result += "_" + character.lowercased()
            } else {
                result.append(character)
            }
        }
        return result
    }

    static func fileText(_ value: Any) -> String {
        switch value {
        case let flag as Bool: return flag ? "yes" : "no"
        case let optional as String?: return optional ?? ""  // `currency`: empty for none
        case let list as [String]: return list.joined(separator: ", ")
        case let sizes as [SizeClass]:
            return sizes.map { size in
                let area = size.area == size.area.rounded() && abs(size.area) < 1e15 ? String(Int(size.area)) : "\(size.area)"
                return "\(size.name):\(area)"
            }.joined(separator: ", ")
        default: return "\(value)"
        }
    }

    /// The report of `spoolctl config check [FILE]`.
    ///
    /// With `file`, that file is checked as the daemons (unrestricted) would read it with
    /// `--config FILE`: defaults, then the file, then `spoolOverride` or `SPOOL_ROOT`. Without,
    /// the lookup of every program (see the type), restricted as for every command when
    /// `restricted` (refusals are the same as any command's, exit 77).
    ///
    /// Every file is read with the caller's real rights, never the setgid group's: a file the
    /// caller cannot read themselves is refused (``ConfigurationError/refused``), so the report
    /// shows nothing they could not see with `cat`.
    ///
    /// - Throws: ``ConfigurationError``: ``ConfigurationError/noSuchFile`` for a missing file,
    ///   `refused` for one not readable by the caller or not permitted, else the first error
    ///   as `FILE:LINE: message`.
    public static func check(file: String?, explicitPath: String?, spoolOverride: String?,
                             environment: [String: String], restricted: Bool,
                             systemPath: String = defaultPath) throws(ConfigurationError) -> ConfigurationReport {
        let environmentPath = environment["SPOOL_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let flagRoot = spoolOverride.flatMap { $0.isEmpty ? nil : $0 }
        let environmentRoot = environment["SPOOL_ROOT"].flatMap { $0.isEmpty ? nil : $0 }
        var configuration = SystemConfiguration()
        var sources: [String: ConfigurationSource] = [:]
        var warnings: [String] = []
        var chosen: (path: String, source: ConfigurationSource)?

        func read(_ path: String, into target: inout SystemConfiguration) throws(ConfigurationError) -> [String: ConfigurationSource] {
            guard let text = try readText(path, asRealUser: true) else { throw ConfigurationError(missing: path) }
            var lines: [String: [Int]] = [:]
            try target.apply(text, file: path, recording: &lines)
            var found: [String: ConfigurationSource] = [:]
            for (key, numbers) in lines {
                found[key] = .file(path, line: numbers[numbers.count - 1])
                for line in numbers.dropLast() {
                    warnings.append("\(path):\(line): \(key) is set again on line \(numbers[numbers.count - 1]); the last one wins")
                }
            }
            return found
        }

        if let file {
            chosen = (file, .argument)
            sources = try read(file, into: &configuration)
        } else if restricted {
            // Refused exactly as every command refuses (with the spool group's rights, as they
            // read), then read again with the caller's own rights for the report.
            _ = try loadRestricted(path: explicitPath ?? environmentPath, root: flagRoot ?? environmentRoot, systemPath: systemPath)
            var system = SystemConfiguration()
            let systemSources = try read(systemPath, into: &system)
            configuration = system
            sources = systemSources
            chosen = (systemPath, .defaultLocation)
            let path = explicitPath ?? environmentPath
            if let path, path != systemPath {
                chosen = (path, explicitPath != nil ? .flag("--config") : .environment("SPOOL_CONFIG"))
                configuration = SystemConfiguration()
                sources = try read(path, into: &configuration)
                configuration.operatorGroup = system.operatorGroup
                configuration.alternateConfigFiles = system.alternateConfigFiles
                configuration.alternateSpoolRoots = system.alternateSpoolRoots
                for key in ["operator_group", "alternate_config_files", "alternate_spool_roots"] { sources[key] = systemSources[key] }
            }
        } else if let path = explicitPath ?? environmentPath {
            chosen = (path, explicitPath != nil ? .flag("--config") : .environment("SPOOL_CONFIG"))
            sources = try read(path, into: &configuration)
        } else {
            do throws(ConfigurationError) {
                sources = try read(systemPath, into: &configuration)
                chosen = (systemPath, .defaultLocation)
            } catch where error.noSuchFile {
                // No system file: defaults only, as every program.
            }
        }
        if let root = flagRoot ?? environmentRoot, !(restricted && file == nil && trimmed(root) == trimmed(configuration.spoolRoot)) {
            configuration.spoolRoot = root
            sources["spool_root"] = flagRoot != nil ? .flag("--spool") : .environment("SPOOL_ROOT")
        }
        warnings += configuration.warnings(file: chosen?.path, sources: sources)
        let settings = configuration.keyValues.map { ConfigurationReport.Setting(key: $0.key, value: $0.value, source: sources[$0.key] ?? .defaultValue) }
        return ConfigurationReport(configuration: configuration, file: chosen?.path, fileSource: chosen?.source,
                                   settings: settings, warnings: warnings)
    }

    private static func trimmed(_ path: String) -> String {
        var result = Substring(path)
        while result.count > 1, result.hasSuffix("/") { result = result.dropLast() }
        return String(result)
    }

    /// Settings that are valid but probably not meant, one line each (`FILE:LINE: …` when a
    /// line of `file` set the key).
    func warnings(file: String?, sources: [String: ConfigurationSource]) -> [String] {
        func at(_ key: String) -> String {
            if case .file(let path, let line) = sources[key] { return "\(path):\(line): " }
            if let source = sources[key] { return "\(source): " }
            return file.map { "\($0): " } ?? ""
        }
        var result: [String] = []
        if !spoolRoot.hasPrefix("/") {
            result.append("\(at("spool_root"))spool_root \(spoolRoot) is relative: each program resolves it from its own working directory, and a setgid spoolctl run by an ordinary user refuses it")
        }
        if breakerHighWater - breakerLowWater < max(2, breakerHighWater / 10) {
            result.append("\(at("breaker_low_water"))breaker_low_water \(breakerLowWater) is within 10% of breaker_high_water \(breakerHighWater): the breaker will close and open again at once")
        }
        if !maildirRoot.isEmpty {
            let root = Self.trimmed(spoolRoot)
            if !(maildirRoot == root || maildirRoot.hasPrefix(root == "/" ? "/" : root + "/")) {
                result.append("\(at("maildir_root"))maildir_root \(maildirRoot) is outside the spool: the notifier's unit may write only the spool (ReadWritePaths=); add it in a drop-in")
            }
            if !maildirRoot.hasPrefix("/") {
                result.append("\(at("maildir_root"))maildir_root \(maildirRoot) is relative: the notifier resolves it from its working directory")
            }
        }
        if retentionDays > 0, retentionDays < maxPeriodMonths * 31 {
            result.append("\(at("retention_days"))retention_days \(retentionDays) is shorter than the longest rental (max_period_months \(maxPeriodMonths)): a finished request's history goes sooner than a rental can last")
        }
        if let currency, !Currency.isKnown(currency) {
            result.append("\(at("currency"))currency \(currency) is not in the built-in table of ISO 4217 codes: amounts in it are taken to have 2 decimals")
        }
        return result
    }
}
