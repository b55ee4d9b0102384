#if canImport(Glibc)
import Glibc
#endif
import GRDB
import GRDBSQLite

/// Bounds what a long-running daemon keeps in memory, whatever it has processed.
///
/// Measured on the allocator (issue 9, heaptrack and `/proc/PID/status`): its live heap stays
/// under 10 MB, yet its resident set grew with every request (about 5 KB each, never given
/// back). The growth was glibc's: each large temporary buffer (the live journal segment read
/// whole per append, up to 4 MiB; index catch-up batches) raised malloc's *dynamic* mmap
/// threshold, so later large buffers came from the arenas' heaps, whose freed middles are never
/// returned, in up to 8 arenas per core (one per worker thread). Besides, each SQLite connection
/// (7 in the allocator) may keep a 2 MiB page cache. So a daemon fixes the mmap threshold
/// (buffers from 128 KiB on are mapped and unmapped on free; setting it disables the dynamic
/// adjustment), uses at most two arenas, and caps SQLite's heap (a soft limit: page caches
/// recycle their pages past it). Measured after: anonymous memory flat at about 9 MB after
/// warm-up (allocator-figures in the notes of issue 9; docs/performance.md).
public enum DaemonMemory {
    /// Soft limit on the memory SQLite allocates in this process (all its connections).
    public static let sqliteSoftHeapLimit: Int64 = 8 << 20
    /// Most glibc malloc arenas.
    public static let mallocArenas: Int32 = 2
    /// Allocations from this size on are mapped (and unmapped when freed).
    public static let mmapThreshold: Int32 = 128 << 10

    /// Applies both bounds to this process; call once, at start-up, before opening databases.
    public static func bound() {
        _ = sqlite3_soft_heap_limit64(sqliteSoftHeapLimit)
        #if canImport(Glibc)
        // mallopt(M_ARENA_MAX, n): <malloc.h> is not in the Glibc module, so looked up by name.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        let (arenaMaximum, mmapThresholdParameter): (Int32, Int32) = (-8, -3)  // M_ARENA_MAX, M_MMAP_THRESHOLD
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") {
            let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
            _ = mallopt(arenaMaximum, mallocArenas)
            _ = mallopt(mmapThresholdParameter, mmapThreshold)
        }
        #endif
    }
}
