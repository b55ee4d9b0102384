import Spool
import Synchronization

/// Counts events (items processed) over the last minute and the last hour, without a lock: a
/// ring of 60 per-second and 60 per-minute slots, each one atomic word holding the slot's time
/// (upper 32 bits: the epoch second, or minute) and its count (lower 32 bits).
///
/// ``record(_:now:)`` is a few compare-and-swaps on the worker's path; the readers
/// (``lastMinute(now:)``, ``lastHour(now:)``) sum the slots whose time lies in the window, so a
/// slot left from an earlier lap of the ring never counts. The last minute covers the current
/// second and the 59 before it; the last hour the current minute and the 59 before it (so up to
/// a minute less than an hour at the start of a minute).
public final class ThroughputCounter: Sendable {
    private final class Slot: Sendable {
        let word = Atomic<UInt64>(0)
    }

    private let seconds: [Slot] = (0..<60).map { _ in Slot() }
    private let minutes: [Slot] = (0..<60).map { _ in Slot() }

    /// An empty counter.
    public init() {}

    /// Counts `count` events at `now` (milliseconds since the epoch).
    public func record(_ count: Int, now: Int64 = Clock.nowMilliseconds()) {
        guard count > 0 else { return }
        let second = UInt64(max(0, now / 1000))
        Self.add(count, to: seconds[Int(second % 60)], tag: second)
        Self.add(count, to: minutes[Int(second / 60 % 60)], tag: second / 60)
    }

    /// Events in the current second and the 59 before it.
    public func lastMinute(now: Int64 = Clock.nowMilliseconds()) -> Int {
        Self.sum(seconds, current: UInt64(max(0, now / 1000)))
    }

    /// Events in the current minute and the 59 before it.
    public func lastHour(now: Int64 = Clock.nowMilliseconds()) -> Int {
        Self.sum(minutes, current: UInt64(max(0, now / 60_000)))
    }

    private static func add(_ count: Int, to slot: Slot, tag: UInt64) {
        let tag32 = tag & 0xffff_ffff
        var current = slot.word.load(ordering: .relaxed)
        while true {
            let sameSlot = current >> 32 == tag32
            let total = min(UInt64(0xffff_ffff), (sameSlot ? current & 0xffff_ffff : 0) + UInt64(count))
            let (exchanged, original) = slot.word.compareExchange(expected: current, desired: tag32 << 32 | total, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    private static func sum(_ slots: [Slot], current: UInt64) -> Int {
        let now32 = current & 0xffff_ffff
        var total = 0
        for slot in slots {
            let word = slot.word.load(ordering: .relaxed)
            let age = (now32 &- (word >> 32)) & 0xffff_ffff
            if age < 60 { total += Int(word & 0xffff_ffff) }
        }
        return total
    }
}
