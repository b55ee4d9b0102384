#if canImport(Glibc)
import Glibc
#endif
import DaemonRuntime
import Intake
import Rentals

/// The Prometheus text exposition format (version 0.0.4), as node_exporter's textfile collector
/// reads it, written by hand.
///
/// Why not `swift-prometheus` (in the package mirror): it is a registry for a long-running
/// process's instruments (counters a process increments, scraped over HTTP), and pulls in
/// swift-metrics and swift-atomics; `stats` builds one snapshot of gauges and writes it once.
/// What the format needs here is small and fully specified: `# HELP` (backslash and newline
/// escaped), `# TYPE`, and samples whose label values escape backslash, double quote and newline
/// (``escapeLabelValue(_:)``); the tests parse the output with Python's `prometheus_client`
/// parser. Measured (issue 10): swift-prometheus 2.4.1 with swift-metrics and swift-atomics
/// builds clean in 23 s wall, 11 s CPU on this machine (a probe package emitting one gauge), about
/// a tenth of the project's clean debug build, for a few dozen lines that would still need this
/// file's atomic write around them. Not adding the dependency keeps the clean build as it is.
struct PrometheusTextfile {
    /// One metric family: its samples share name, help and type.
    struct Family {
        var name: String
        var help: String
        /// `gauge` (every metric of `stats` is a gauge: a snapshot, no counter kept over time).
        var type = "gauge"
        var samples: [(labels: [(String, String)], value: String)] = []

        init(_ name: String, _ help: String) {
            self.name = name
            self.help = help
        }

        mutating func add(_ value: String, _ labels: [(String, String)] = []) { samples.append((labels, value)) }
        mutating func add(_ value: Int, _ labels: [(String, String)] = []) { add(String(value), labels) }
        mutating func add(_ value: Int64, _ labels: [(String, String)] = []) { add(String(value), labels) }
        mutating func add(_ value: Double, _ labels: [(String, String)] = []) { add(PrometheusTextfile.format(value), labels) }
    }

    var families: [Family] = []

    /// The file's text: each family's HELP and TYPE lines, then its samples; families without a
    /// sample are left out.
    func render() -> String {
        var lines: [String] = []
        for family in families where !family.samples.isEmpty {
            lines.append("# HELP \(family.name) \(Self.escapeHelp(family.help))")
            lines.append("# TYPE \(family.name) \(family.type)")
            for sample in family.samples {
                let labels = sample.labels.map { "\($0.0)=\"\(Self.escapeLabelValue($0.1))\"" }.joined(separator: ",")
                lines.append(family.name + (labels.isEmpty ? "" : "{\(labels)}") + " " + sample.value)
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func escapeHelp(_ text: String) -> String {
        text.escapingScalars(["\\": "\\\\", "\n": "\\n"])
    }

    static func escapeLabelValue(_ text: String) -> String {
        text.escapingScalars(["\\": "\\\\", "\"": "\\\"", "\n": "\\n"])
    }

    /// A float as Prometheus (Go's `ParseFloat`) reads it: Swift's shortest round-trip form.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Inf" : "+Inf" }
        return "\(value)"
    }

    /// Replaces `path` with `text` atomically: a new file (mode 0644: node_exporter runs as
    /// another user, and metrics are no secret) in the same directory, written, `fsync`ed,
    /// renamed over `path`, the directory `fsync`ed. A reader sees the old file or the new one,
    /// never a partial one; on failure the temporary file is removed and `path` is unchanged.
    ///
    /// - Throws: ``IntakeError`` 73 when the temporary file cannot be created (no such
    ///   directory, no permission), 74 when writing, syncing or renaming fails.
    static func write(_ text: String, to path: String) throws(IntakeError) {
        let slash = path.lastIndex(of: "/")
        let directoryPath = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty, name != ".", name != ".." else { throw IntakeError(.usage, "--prometheus \(path.echoed) names no file") }
        let directory = open(directoryPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else {
            throw IntakeError(.cannotCreate, "cannot open directory \(directoryPath.echoed): \(errnoDescription(errno))")
        }
        defer { close(directory) }
        // Not `*.prom`: the textfile collector never reads a half-written temporary file.
        let temporary = ".\(name).\(getpid()).tmp"
        var fd = openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if fd < 0, errno == EEXIST {
            // Left by a killed run that had this pid (no live process has it but this one).
            unlinkat(directory, temporary, 0)
            fd = openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        }
        guard fd >= 0 else {
            throw IntakeError(.cannotCreate, "cannot create \(directoryPath.echoed)/\(temporary.echoed): \(errnoDescription(errno))")
        }
        func fail(_ doing: String, _ code: Int32) -> IntakeError {
            unlinkat(directory, temporary, 0)
            return IntakeError(.ioError, "cannot \(doing) \(path.echoed): \(errnoDescription(code))")
        }
        _ = fchmod(fd, 0o644)
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written > 0 {
                offset += written
            } else if written < 0, errno == EINTR {
                continue
            } else {
                let code = written < 0 ? errno : EIO
                close(fd)
                throw fail("write", code)
            }
        }
        if fsync(fd) != 0 {
            let code = errno
            close(fd)
            throw fail("sync", code)
        }
        if close(fd) != 0 { throw fail("close", errno) }
        if renameat(directory, temporary, directory, name) != 0 { throw fail("rename into", errno) }
        _ = fsync(directory)  // the rename durable; a failure here leaves a complete file either way
    }
}

extension String {
    /// The text with each Unicode scalar in `replacements` replaced. By scalar, not by
    /// `Character`: a quote or backslash followed by a combining mark, or the `\r\n` pair, is one
    /// `Character` that equals neither `"`, `\\` nor `\n`, and would pass unescaped (a raw line
    /// break or an unescaped quote in the file).
    fileprivate func escapingScalars(_ replacements: [Unicode.Scalar: String]) -> String {
        guard unicodeScalars.contains(where: { replacements[$0] != nil }) else { return self }
        var result = ""
        for scalar in unicodeScalars {
            if let replacement = replacements[scalar] { result += replacement } else { result.unicodeScalars.append(scalar) }
        }
        return result
    }
}
