import Foundation
import Testing
@testable import Spool

/// Power-loss simulation (issue 8, item 2): records every file-system operation of a run of
/// submits, cancels, decisions and deliveries, and at every cut point checks the crash states
/// ``CrashModel`` allows (see it for the model): every acknowledged request survives and is
/// processed to a terminal state, nothing is seen half-written, recovery succeeds.
///
/// Counts: quick by default (CI); `TORTURE_MODE=full` checks every cut with more states each.
/// `POWERLOSS_SEED`, `POWERLOSS_STATES_PER_CUT`, `POWERLOSS_CUT_STRIDE` and
/// `POWERLOSS_RECONCILE_EVERY` (the real `spoolctl reconcile` runs on every n-th state first)
/// override them.
/// Prints one line `POWERLOSS cuts=… states=… violations=… …` for `scripts/torture.d/powerloss`.
@Suite struct PowerLossTests {
    struct Settings {
        var seed: UInt64
        var statesPerCut: Int
        var cutStride: Int
        /// Every how many states the real `spoolctl reconcile` runs first.
        var realReconcileEvery: Int
        var mode: String

        static var current: Settings {
            let environment = ProcessInfo.processInfo.environment
            let full = environment["TORTURE_MODE"] == "full"
            return Settings(seed: environment["POWERLOSS_SEED"].flatMap { UInt64($0) } ?? 8,
                            statesPerCut: environment["POWERLOSS_STATES_PER_CUT"].flatMap { Int($0) } ?? (full ? 24 : 3),
                            cutStride: environment["POWERLOSS_CUT_STRIDE"].flatMap { Int($0) } ?? (full ? 1 : 6),
                            realReconcileEvery: environment["POWERLOSS_RECONCILE_EVERY"].flatMap { Int($0) } ?? (full ? 5 : 40),
                            mode: full ? "full" : "quick")
        }
    }

    /// A scratch directory on a tmpfs when there is one (`/dev/shm`): the simulation needs no
    /// real durability, and thousands of crash states would otherwise wait for the disk's
    /// `fsync`s. Falls back to ``TemporaryDirectory``.
    static func scratch(_ label: String) -> String {
        let base = "/dev/shm/spool-tests-\(getpid())"
        if access("/dev/shm", W_OK) == 0, (try? FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)) != nil {
            var bytes = Array("\(base)/\(label).XXXXXX".utf8CString)
            if let result = mkdtemp(&bytes) { return String(cString: result) }
        }
        return TemporaryDirectory(label).path
    }

    /// Removes a scratch directory, and its per-process parent once empty.
    static func remove(_ scratch: String) {
        try? FileManager.default.removeItem(atPath: scratch)
        rmdir((scratch as NSString).deletingLastPathComponent)
    }

    @Test func everyAcknowledgedRequestSurvivesEveryCrashState() throws {
        let settings = Settings.current
        let scratch = Self.scratch("powerloss")
        let world = "\(scratch)/world"
        try FileManager.default.createDirectory(atPath: world, withIntermediateDirectories: false)
        let started = ContinuousClock.now
        let recording = try PowerLossWorkload.record(world: world)
        #expect(recording.sqliteSynchronous == 2, "the SQLite files are trusted to be durable at commit: synchronous=FULL")
        #expect(recording.untracked == 0, "every file the seam changes is modelled")

        var model = CrashModel()
        var seen = Set<Int>()
        var cuts = 0, states = 0, duplicates = 0, reconciles = 0
        var violations: [String] = []
        let events = recording.events
        var candidates = 0
        for position in 0...events.count {
            if position > 0 { model.apply(events[position - 1]) }
            guard position == 0 || events[position - 1].changesState else { continue }
            candidates += 1
            guard candidates % settings.cutStride == 0 || position == events.count else { continue }
            cuts += 1
            let seed = settings.seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(position)
            for choice in model.choices(limit: settings.statesPerCut, seed: seed).choices {
                let layout = model.layout(choice)
                var hasher = Hasher()
                for item in layout {
                    hasher.combine(item.path)
                    hasher.combine(item.bytes)
                }
                hasher.combine(model.sqlite)
                hasher.combine(model.acks)
                guard seen.insert(hasher.finalize()).inserted else { duplicates += 1; continue }
                states += 1
                let root = "\(scratch)/state-\(states)"
                try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
                try model.materialise(layout, snapshot: model.sqlite.map { recording.snapshots[$0] }, at: root)
                let real = states % settings.realReconcileEvery == 0
                if real { reconciles += 1 }
                let found = PowerLossWorkload.recover(world: root, acks: model.acks, recording: recording, realReconcile: real)
                if found.isEmpty {
                    try? FileManager.default.removeItem(atPath: root)
                } else {
                    violations.append("cut \(position)/\(events.count) (after \(position > 0 ? "\(events[position - 1])".prefix(160) : "nothing")), state \(root): \(found.joined(separator: "; "))")
                }
            }
        }
        let seconds = (ContinuousClock.now - started).components.seconds
        print("POWERLOSS mode=\(settings.mode) cuts=\(cuts) states=\(states) violations=\(violations.count) events=\(events.count) duplicates_skipped=\(duplicates) real_reconciles=\(reconciles) states_per_cut=\(settings.statesPerCut) cut_stride=\(settings.cutStride) seed=\(settings.seed) seconds=\(seconds)")
        for violation in violations.prefix(20) { Issue.record("\(violation)") }
        #expect(violations.isEmpty)
        #expect(cuts >= 40 && states > cuts, "the run must give many cut points")
        if violations.isEmpty { Self.remove(scratch) } else { print("powerloss: failing states kept in \(scratch)") }
    }

    /// The simulator catches a missing `fsync`: with the directory syncs of an enqueue left out
    /// of the record (as if the product did not make them), some crash state after the enqueue
    /// returned has lost the item; with them, none has.
    @Test func theSimulatorCatchesAMissingDirectorySync() throws {
        for drops in [false, true] {
            let scratch = Self.scratch("powerloss-self")
            let world = "\(scratch)/world"
            try FileManager.default.createDirectory(atPath: world, withIntermediateDirectories: false)
            let recorder = RecordingFileSystem(world: world, databases: [], dropsDirectorySyncs: drops)
            var configuration = Spool.Configuration()
            configuration.calls = recorder.calls
            let spool = try Spool(path: "\(world)/spool", create: true, configuration: configuration)
            try spool.queue(QueueName("work")).enqueue(Array("payload".utf8))
            var model = CrashModel()
            for event in recorder.events { model.apply(event) }
            let states = model.choices(limit: 4096, seed: 1).choices.map { model.layout($0) }
            let lost = states.filter { layout in !layout.contains { $0.path.hasPrefix("spool/queues/work/ready/") && $0.bytes != nil } }
            #expect(states.count > 1)
            Self.remove(scratch)
            if drops {
                #expect(!lost.isEmpty, "without directory syncs a crash state must lose the enqueued item")
            } else {
                #expect(lost.isEmpty, "an enqueued item survives every crash state")
            }
        }
    }
}
