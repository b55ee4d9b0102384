// The libFuzzer driver: one binary for every target, chosen by `SPOOL_FUZZ_TARGET`. Built only
// with `-sanitize=fuzzer` (libFuzzer supplies `main`); see `scripts/torture.d/fuzz`.
#if canImport(Glibc)
import Glibc
#endif
import FuzzTargets

nonisolated(unsafe) private var selected: FuzzTarget?

/// Picks the target named by `SPOOL_FUZZ_TARGET`; exits 64 naming the targets if there is none.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let name = getenv("SPOOL_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTarget.named(name) else {
        fputs("spool-fuzz: set SPOOL_FUZZ_TARGET to one of: \(FuzzTarget.all.map(\.name).joined(separator: " "))\n", stderr)
        exit(64)
    }
    selected = target
    return 0
}

/// Runs the target on one input; a violated property aborts, so libFuzzer keeps the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let target = selected else { return 0 }
    let input = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let violations = target.check(input)
    if !violations.isEmpty {
        fputs("spool-fuzz: \(target.name): property violated:\n  \(violations.joined(separator: "\n  "))\n", stderr)
        abort()
    }
    return 0
}
