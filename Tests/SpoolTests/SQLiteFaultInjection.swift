import Testing

/// The suites that use the fault-injecting SQLite VFS (`SQLiteFaults`). Its armed fault, its
/// counters and its read error kind are process-wide, so these suites run one test at a time:
/// one suite arming or disarming while another's test runs would move or swallow that test's
/// fault. Every suite that calls `sqlite_faults_*` is nested here (in an extension).
@Suite(.serialized) enum SQLiteFaultInjection {}
