// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "SelfStorageSpool",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Spool", targets: ["Spool"]),
        // The domain libraries, as products for the fuzz package in Fuzz/ (not built by CI).
        .library(name: "DaemonRuntime", targets: ["DaemonRuntime"]),
        .library(name: "Rentals", targets: ["Rentals"]),
        .library(name: "Intake", targets: ["Intake"]),
        .library(name: "Allocator", targets: ["Allocator"]),
        .library(name: "Notifier", targets: ["Notifier"]),
        .library(name: "UnitImport", targets: ["UnitImport"]),
        .executable(name: "spoolctl", targets: ["spoolctl"]),
        .executable(name: "spool-allocator", targets: ["spool-allocator"]),
        .executable(name: "spool-notifier", targets: ["spool-notifier"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swiftcsv/SwiftCSV", from: "0.10.0"),
        // Property-based testing with shrinking (tests only).
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // zlib from the system (`zlib1g-dev`): a module map that links `z`.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // sqlite3_db_config, which Swift cannot call (variadic), wrapped (`libsqlite3-dev`).
        .systemLibrary(
            name: "CSQLiteShim",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(
            name: "Spool",
            dependencies: [
                "CZlib", "CSQLiteShim",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The programs' version (`--version`), stamped into the linked programs by
        // scripts/build-release (why so: Sources/CBuildVersion/version.c). A C leaf.
        .target(name: "CBuildVersion"),
        // The daemons' runtime: worker pool over a queue, stop signal, sd_notify, logging,
        // process hardening, start-up retries and the launcher. Nothing of rentals.
        .target(
            name: "DaemonRuntime",
            dependencies: [
                "Spool", "CBuildVersion",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The shared rental vocabulary: requests, statuses, calendar days, the configuration and
        // daemon settings, queue names, the messages between allocator and notifier.
        .target(
            name: "Rentals",
            dependencies: ["Spool"]
        ),
        // The front door library (what `spoolctl` runs): never a daemon's module.
        .target(
            name: "Intake",
            dependencies: ["Spool", "Rentals", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Allocator",
            dependencies: [
                "Spool", "Rentals", "DaemonRuntime",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Notifier",
            dependencies: ["Spool", "Rentals", "DaemonRuntime", .product(name: "Logging", package: "swift-log")]
        ),
        // Parsing of `spoolctl units import` files (CSV, JSON), apart from the command so that
        // it can be fuzzed.
        .target(
            name: "UnitImport",
            dependencies: ["Intake", "Allocator", .product(name: "SwiftCSV", package: "SwiftCSV")]
        ),
        .executableTarget(
            name: "spoolctl",
            dependencies: [
                "Spool", "Rentals", "Intake", "DaemonRuntime", "Allocator", "UnitImport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "spool-allocator",
            dependencies: [
                "Rentals", "DaemonRuntime", "Allocator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "spool-notifier",
            dependencies: [
                "Rentals", "DaemonRuntime", "Notifier",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // A small driver the crash and concurrency tests (and the benchmarks) run as a
        // separate process: enqueue in a loop, consume a queue, append to the journal.
        .executableTarget(
            name: "spool-exerciser",
            dependencies: ["Spool"],
            path: "Tests/Exerciser"
        ),
        // Runs one retention pruning (with a pause before each durable step) for the SIGKILL
        // tests of RetentionPruning.
        .executableTarget(
            name: "spool-prune-driver",
            dependencies: ["Spool", "Rentals", "Allocator", .product(name: "Logging", package: "swift-log")],
            path: "Tests/PruneDriver"
        ),
        // Benchmarks against a raw syscall baseline: `swift run -c release spool-bench`.
        .executableTarget(
            name: "spool-bench",
            dependencies: [
                "Spool", "Rentals", "Intake", "Allocator",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/spool-bench"
        ),
        // The allocator's decisions/s against rentals held, and its memory over a long run:
        // `swift run -c release allocator-bench [decisions|memory]`.
        .executableTarget(
            name: "allocator-bench",
            dependencies: ["Spool", "Rentals", "Allocator", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/allocator-bench"
        ),
        // A SQLite VFS that injects I/O faults into the status index, for the fault tests.
        .target(
            name: "SQLiteFaults",
            path: "Tests/SQLiteFaults",
            linkerSettings: [.linkedLibrary("sqlite3")]
        ),
        .testTarget(
            name: "SpoolTests",
            dependencies: [
                "Spool", "DaemonRuntime", "Rentals", "Intake", "Allocator", "Notifier", "UnitImport", "SQLiteFaults",
                "spool-exerciser", "spoolctl", "spool-allocator", "spool-notifier", "spool-prune-driver",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
    ]
)
