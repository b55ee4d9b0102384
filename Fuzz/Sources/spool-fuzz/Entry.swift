// The libFuzzer driver: one binary for every target, chosen by `SPOOL_FUZZ_TARGET`. Built only
// with `-sanitize=fuzzer` (see `scripts/torture.d/fuzz`). SwiftPM renames an executable's entry
// point when testing is enabled (and it is, for `@testable import`), which would hide
// libFuzzer's own `main`: so `main` is ours, and hands over to libFuzzer's driver.
#if canImport(Glibc)
import Glibc
#endif
import FuzzTargets

nonisolated(unsafe) private var selected: FuzzTarget?

/// libFuzzer's driver (`compiler-rt/lib/fuzzer/FuzzerInterface.h`): parses the flags, runs the
/// callback on each input.
@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                       _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@main
enum SpoolFuzz {
    /// Picks the target named by `SPOOL_FUZZ_TARGET` (exit 64 naming the targets if there is
    /// none) and runs libFuzzer with the command line's flags.
    static func main() {
        let name = getenv("SPOOL_FUZZ_TARGET").map { String(cString: $0) } ?? ""
        guard let target = FuzzTarget.named(name) else {
            report("spool-fuzz: set SPOOL_FUZZ_TARGET to one of: \(FuzzTarget.all.map(\.name).joined(separator: " "))\n")
            exit(64)
        }
        selected = target
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runDriver(&argc, &argv, fuzzerTestOneInput))
    }
}

/// Runs the target on one input; a violated property aborts, so libFuzzer keeps the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let target = selected else { return 0 }
    let input = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let violations = target.check(input)
    if !violations.isEmpty {
        report("spool-fuzz: \(target.name): property violated:\n  \(violations.joined(separator: "\n  "))\n")
        abort()
    }
    return 0
}

/// Writes `text` to standard error.
private func report(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
