import Spool

/// Which finished requests compaction may drop from the journal and the status index, and when
/// (`retention_days`, `retention_archive` in the configuration).
///
/// A request is **finished** when nothing more will happen to it: it is `completed`, or it is
/// `rejected` or `cancelled` and the customer has been notified (`notifiedAt` is set). A
/// finished request may be dropped once its last status is older than ``days`` days. Everything
/// else is kept, whatever its age: a request still waiting, rented, or whose notification has
/// not been delivered is never dropped. The rule is a pure function of the status and the time,
/// so every program that applies it (compaction, the index restore in `reconcile`, the pruning
/// of the allocator's store) agrees on it, in any order and after any crash.
public struct RetentionPolicy: Sendable, Equatable {
    /// Days a finished request is kept after its last status; nil keeps every request forever.
    public var days: Int?
    /// Whether compaction archives what it drops before it leaves the journal.
    public var archive: Bool

    /// A policy keeping finished requests `days` days (nil: forever).
    public init(days: Int?, archive: Bool) {
        self.days = days
        self.archive = archive
    }

    /// The policy a configuration sets (`retention_days = 0` keeps everything).
    public init(_ configuration: SystemConfiguration) {
        self.init(days: configuration.retentionDays > 0 ? configuration.retentionDays : nil,
                  archive: configuration.retentionArchive)
    }

    /// Whether nothing more will happen to a request in `status`.
    public static func isFinished(_ status: RentalStatus) -> Bool {
        switch status.state {
        case .completed: true
        case .rejected, .cancelled, .expired: status.notifiedAt != nil
        case .received, .assigned, .confirmed, .waitlisted: false
        }
    }

    /// Whether a request whose latest status is `status` may be dropped at `now`: it is finished
    /// and its last status is more than ``days`` days old.
    public func mayDrop(_ status: RentalStatus, now: Timestamp) -> Bool {
        guard let days, Self.isFinished(status) else { return false }
        return now.milliseconds - status.updatedAt.milliseconds > Int64(days) * 86_400_000
    }
}
