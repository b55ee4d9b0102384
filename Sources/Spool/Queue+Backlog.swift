import Foundation

/// The backlog test admission control runs on every submit, at a cost that does not grow with
/// the queue.
extension Queue {
    /// The backlog as ``backlog(limit:)`` counts it (waiting items plus claimed ones), when it
    /// may have reached `limit`; otherwise a number below `limit`, known from a sample.
    ///
    /// Counts `active/`, then lists the ready buckets in a random order and stops as soon as the
    /// items seen so far show that the backlog is below `limit` (see
    /// ``BacklogSample/isSurelyBelow(limit:seen:bucketsListed:bucketCount:)``): an item's bucket
    /// is a hash of its random id, so every bucket holds about the same share of the backlog,
    /// and a backlog at `limit` or above shows too many items in the sample for the rule to
    /// stop, except with probability below 3 × 10⁻⁸ per call. With an empty queue that is 12 of
    /// the 256 buckets for a limit of 1,000 (and the rule never stops early for a limit below
    /// 47); near `limit` every bucket is listed and the count is exact, as before.
    ///
    /// - Throws: ``SpoolError`` when a directory cannot be listed.
    public func boundedBacklog(limit: Int) throws(SpoolError) -> Int {
        let claimed = try active.names().count
        guard claimed < limit else { return claimed }
        var seen = 0
        var order = Array(0..<Self.bucketCount)
        order.shuffle()
        for (listed, index) in order.enumerated() {
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
