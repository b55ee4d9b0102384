import Foundation

/// The backlog test admission control runs on every submit, at a cost that does not grow with
/// the queue.
extension Queue {
    /// The backlog as ``backlog(limit:)`` counts it (waiting items plus claimed ones), when it
    /// may have reached `limit`; otherwise a number below `limit`, known from a sample.
    ///
    /// Counts `active/`, then lists the ready buckets in a spread order from a random start (see
    /// ``spreadOrder(_:)``) and stops as soon as the items seen so far show that the backlog is
    /// below `limit` (see
    /// ``BacklogSample/isSurelyBelow(limit:seen:bucketsListed:bucketCount:)``): an item's bucket
    /// is a hash of its random id, so every bucket holds about the same share of the backlog,
    /// and a backlog at `limit` or above shows too many items in the sample for the rule to
    /// stop, except with probability below 3 × 10⁻⁸ per call. With an empty queue that is 12 of
    /// the 256 buckets for a limit of 1,000 (and the rule never stops early for a limit below
    /// 47); near `limit` every bucket is listed and the count is exact, as before. The consumer
    /// does not keep the backlog spread: it claims every due item of one bucket, then moves to the
    /// next, so a queue it is draining holds what is left in a run of consecutive buckets; the
    /// spread order meets every run of 2ⁿ⁺¹ buckets or more within the first 256 / 2ⁿ listed,
    /// where a uniformly random order missed a run of 40 buckets in a quarter of the checks.
    ///
    /// - Throws: ``SpoolError`` when a directory cannot be listed.
    public func boundedBacklog(limit: Int) throws(SpoolError) -> Int {
        let claimed = try active.names().count
        guard claimed < limit else { return claimed }
        var seen = 0
        let start = Int.random(in: 0..<Self.bucketCount)
        for listed in 0..<Self.bucketCount {
            let index = (start + Self.spreadOrder(listed)) % Self.bucketCount
            do {
                seen += try bucket(ItemID.bucketName(index), create: false).names().count
            } catch .notFound {
                // A bucket made at its first enqueue: none yet.
            }
            if claimed + seen >= limit { return claimed + seen }
            if BacklogSample.isSurelyBelow(limit: limit - claimed, seen: seen, bucketsListed: listed + 1, bucketCount: Self.bucketCount) {
                // Below `limit` by the rule; scaled up, still below it.
                return min(limit - 1, claimed + seen * Self.bucketCount / (listed + 1))
            }
        }
        return claimed + seen
    }

    /// The `step`th offset (0 to 255) of the backlog's listing order: `step`'s 8 bits reversed
    /// (0, 128, 64, 192, 32, …), so the first 2ⁿ offsets lie evenly 256 / 2ⁿ apart. Which buckets
    /// are listed does not depend on the items, so under the random ids the stopping rule's
    /// bound holds as for a random order.
    static func spreadOrder(_ step: Int) -> Int {
        var value = step, reversed = 0
        for _ in 0..<8 {
            reversed = reversed << 1 | value & 1
            value >>= 1
        }
        return reversed
    }
}

/// The stopping rule of ``Queue/boundedBacklog(limit:)``.
public enum BacklogSample {
    /// The bound on the chance that one check stops early although the backlog reached the
    /// limit, at each of the (at most 256) steps: 10⁻¹⁰, so below 3 × 10⁻⁸ per call.
    static let logFailureBound = log(1e-10)

    /// True when `seen` items in `bucketsListed` of `bucketCount` buckets, chosen at random,
    /// show that fewer than `limit` items wait in all of them.
    ///
    /// If `limit` or more waited, the number seen would be at least a hypergeometric count with
    /// mean μ = `limit` × `bucketsListed` / `bucketCount`, whose lower tail is bounded by
    /// Chernoff's: P(X ≤ (1 − δ) μ) ≤ exp(−δ² μ / 2) (Hoeffding: sampling without replacement
    /// is no more spread than with). The rule stops when `seen` lies below the point where that
    /// bound reaches ``logFailureBound``.
    public static func isSurelyBelow(limit: Int, seen: Int, bucketsListed: Int, bucketCount: Int) -> Bool {
        guard limit > 0, bucketsListed > 0 else { return false }
        let mean = Double(limit) * Double(bucketsListed) / Double(bucketCount)
        let delta = (-2 * logFailureBound / mean).squareRoot()
        guard delta < 1 else { return false }
        return Double(seen) <= (1 - delta) * mean
    }
}
