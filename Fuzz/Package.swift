// swift-tools-version: 6.0
// The fuzz targets, apart from the product's package so that CI's build does not grow. Built
// and run by `scripts/torture.d/fuzz --full` (libFuzzer: `-sanitize=fuzzer`, with ASan); the
// corpora in `Corpus/` are replayed by the test suite (`FuzzCorpusTests`) on every CI run.
import Foundation
import PackageDescription

// The product's package is the directory above. SwiftPM names a path dependency after its
// directory, which is whatever the clone is called (and may clash with this package's own name,
// `fuzz`), so scripts/torture.d/fuzz points SPOOL_FUZZ_ROOT at a link named `SelfStorageSpool`.
let rootPath = Context.environment["SPOOL_FUZZ_ROOT"].flatMap { $0.isEmpty ? nil : $0 } ?? ".."
let rootIdentity = URL(fileURLWithPath: rootPath, relativeTo: URL(fileURLWithPath: Context.packageDirectory + "/"))
    .standardizedFileURL.lastPathComponent

let package = Package(
    name: "SpoolFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: rootPath),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // The targets and their properties; `Tests/SpoolTests/FuzzTargets` links to them.
        .target(
            name: "FuzzTargets",
            dependencies: [
                .product(name: "Spool", package: rootIdentity),
                .product(name: "Rentals", package: rootIdentity),
                .product(name: "Intake", package: rootIdentity),
                .product(name: "Allocator", package: rootIdentity),
                .product(name: "Notifier", package: rootIdentity),
                .product(name: "UnitImport", package: rootIdentity),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // libFuzzer's entry points; `SPOOL_FUZZ_TARGET` picks the target.
        .executableTarget(name: "spool-fuzz", dependencies: ["FuzzTargets"]),
    ]
)
