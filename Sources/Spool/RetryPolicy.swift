/// How a queue retries an item whose processing failed: exponential backoff with jitter, and a
/// dead-letter after a number of attempts.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts (failed processings, including expired leases) after which the item is moved to
    /// the dead-letter area instead of being retried.
    public var maxAttempts: Int
    /// The delay before the first retry.
    public var baseDelay: Duration
    /// The longest delay between two attempts.
    public var maxDelay: Duration

    /// A policy; the defaults retry 8 times over roughly half an hour.
    public init(maxAttempts: Int = 8, baseDelay: Duration = .seconds(2), maxDelay: Duration = .seconds(900)) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The delay before attempt `attempts + 1`, in milliseconds: `baseDelay · 2^(attempts-1)`,
    /// capped at `maxDelay`, then scaled by a random factor in [0.5, 1] ("equal jitter") so that
    /// items that failed together do not all retry in the same instant.
    public func delayMilliseconds(afterAttempts attempts: Int) -> Int64 {
        let base = baseDelay.milliseconds
        let cap = maxDelay.milliseconds
        var capped = min(base, cap)
        for _ in 1..<max(attempts, 1) where capped < cap { capped = min(capped * 2, cap) }
        return capped / 2 + Int64.random(in: 0...max(capped - capped / 2, 0))
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
