/// ``StatsReport`` as Prometheus metrics (prefix `selfstorage_`, every one a gauge: `stats` takes
/// a snapshot and keeps no counter, so no name ends in `_total`). Times are exported as
/// `_timestamp_seconds` (Unix time), ages as `_seconds`, sizes as `_bytes`; each value is the
/// number `stats --json` reports (times there in milliseconds), so the two agree.
///
/// Families (labels):
/// - `selfstorage_queue_items{queue,state}`: state `ready`, `deferred`, `active`, `dead`.
/// - `selfstorage_queue_oldest_waiting_age_seconds{queue}`: only while an item waits.
/// - `selfstorage_breaker_open`, `selfstorage_breaker_opened_timestamp_seconds` (only while open).
/// - `selfstorage_corrupt_files`.
/// - `selfstorage_index_readable`, `selfstorage_index_lag_bytes`, `selfstorage_index_lag_segments`.
/// - `selfstorage_journal_bytes`, `selfstorage_journal_segments`.
/// - `selfstorage_processed_last_minute{program}`, `selfstorage_processed_last_hour{program}`,
///   `selfstorage_live_instances{program}`: sums over the live instances' heartbeats.
/// - `selfstorage_daemon_up{program,instance}` (1 live, 0 stale or stopped),
///   `selfstorage_daemon_running{program,instance}` (1 unless stopped cleanly: running and not up
///   is stale), `selfstorage_daemon_heartbeat_timestamp_seconds`, `selfstorage_daemon_start_time_seconds`,
///   `selfstorage_daemon_backlog`, `selfstorage_daemon_processed_last_minute`,
///   `selfstorage_daemon_processed_last_hour`, `selfstorage_daemon_info{program,instance,version}` (1).
/// - `selfstorage_heartbeat_files_unreadable`, `selfstorage_stats_timestamp_seconds`.
extension StatsReport {
    var prometheus: PrometheusTextfile {
        func seconds(_ milliseconds: Int64) -> Double { Double(milliseconds) / 1000 }
        var items = PrometheusTextfile.Family("selfstorage_queue_items", "Items in a spool queue, by state (ready: due now; deferred: waiting for a retry time; active: claimed by a daemon; dead: dead-lettered).")
        var oldest = PrometheusTextfile.Family("selfstorage_queue_oldest_waiting_age_seconds", "Age of the oldest item waiting in the queue (since its first enqueue); absent when none waits.")
        for name in queues.keys.sorted() {
            let queue = queues[name]!
            for (state, count) in [("ready", queue.ready), ("deferred", queue.deferred), ("active", queue.active), ("dead", queue.dead)] {
                items.add(count, [("queue", name), ("state", state)])
            }
            if let age = queue.oldestWaitingAgeSeconds { oldest.add(age, [("queue", name)]) }
        }
        var breakerOpen = PrometheusTextfile.Family("selfstorage_breaker_open", "1 while the admission breaker refuses new requests, else 0.")
        breakerOpen.add(breaker.state == "open" ? 1 : 0)
        var breakerOpened = PrometheusTextfile.Family("selfstorage_breaker_opened_timestamp_seconds", "When the admission breaker opened (Unix time); absent while closed.")
        if let openedAt = breaker.openedAt { breakerOpened.add(seconds(openedAt)) }
        var corrupt = PrometheusTextfile.Family("selfstorage_corrupt_files", "Files quarantined in the spool's corrupt/ directory.")
        corrupt.add(corruptFiles)
        var indexReadable = PrometheusTextfile.Family("selfstorage_index_readable", "1 when the status index could be read, else 0.")
        indexReadable.add(index.readable ? 1 : 0)
        var lagBytes = PrometheusTextfile.Family("selfstorage_index_lag_bytes", "Journal bytes not yet projected into the status index (later segments at their size on disk).")
        var lagSegments = PrometheusTextfile.Family("selfstorage_index_lag_segments", "Journal segments holding bytes not yet projected into the status index.")
        if let bytes = index.lagBytes { lagBytes.add(bytes) }
        if let count = index.lagSegments { lagSegments.add(count) }
        var journalBytes = PrometheusTextfile.Family("selfstorage_journal_bytes", "Size of the journal's segment files on disk (sealed segments compressed).")
        journalBytes.add(journal.bytes)
        var journalSegments = PrometheusTextfile.Family("selfstorage_journal_segments", "Journal segment files.")
        journalSegments.add(journal.segments)

        var minute = PrometheusTextfile.Family("selfstorage_processed_last_minute", "Items the program's live instances handled in the last minute, from their heartbeats.")
        var hour = PrometheusTextfile.Family("selfstorage_processed_last_hour", "Items the program's live instances handled in the last hour, from their heartbeats.")
        var liveInstances = PrometheusTextfile.Family("selfstorage_live_instances", "Instances of the program whose heartbeat is fresh.")
        for program in rates.keys.sorted() {
            let rate = rates[program]!
            minute.add(rate.processedLastMinute, [("program", program)])
            hour.add(rate.processedLastHour, [("program", program)])
            liveInstances.add(rate.liveInstances, [("program", program)])
        }

        var up = PrometheusTextfile.Family("selfstorage_daemon_up", "1 when the daemon's heartbeat is fresh (within 3 intervals), else 0.")
        var running = PrometheusTextfile.Family("selfstorage_daemon_running", "0 when the daemon stopped cleanly, else 1 (running but not up: stale, hung or killed).")
        var beat = PrometheusTextfile.Family("selfstorage_daemon_heartbeat_timestamp_seconds", "When the daemon last wrote its heartbeat (Unix time).")
        var started = PrometheusTextfile.Family("selfstorage_daemon_start_time_seconds", "When the daemon started (Unix time).")
        var backlog = PrometheusTextfile.Family("selfstorage_daemon_backlog", "Items waiting or claimed in the daemon's queue at its last heartbeat (-1: unknown).")
        var daemonMinute = PrometheusTextfile.Family("selfstorage_daemon_processed_last_minute", "Items the daemon handled in the minute before its last heartbeat.")
        var daemonHour = PrometheusTextfile.Family("selfstorage_daemon_processed_last_hour", "Items the daemon handled in the hour before its last heartbeat.")
        var info = PrometheusTextfile.Family("selfstorage_daemon_info", "The daemon's version, as a label; always 1.")
        for daemon in daemons {
            let labels = [("program", daemon.program), ("instance", daemon.instance)]
            up.add(daemon.liveness == "live" ? 1 : 0, labels)
            running.add(daemon.liveness == "stopped" ? 0 : 1, labels)
            beat.add(seconds(daemon.updatedAt), labels)
            started.add(seconds(daemon.startedAt), labels)
            backlog.add(daemon.backlog, labels)
            daemonMinute.add(daemon.processedLastMinute, labels)
            daemonHour.add(daemon.processedLastHour, labels)
            info.add(1, labels + [("version", daemon.version)])
        }
        var unreadable = PrometheusTextfile.Family("selfstorage_heartbeat_files_unreadable", "Files in the spool's heartbeat/ directory not shown: they do not decode, or hold values no daemon writes.")
        unreadable.add(heartbeatFilesUnreadable)
        var generated = PrometheusTextfile.Family("selfstorage_stats_timestamp_seconds", "When spoolctl stats took this snapshot (Unix time).")
        generated.add(seconds(generatedAt))
        return PrometheusTextfile(families: [
            items, oldest, breakerOpen, breakerOpened, corrupt, indexReadable, lagBytes, lagSegments, journalBytes, journalSegments,
            minute, hour, liveInstances, up, running, beat, started, backlog, daemonMinute, daemonHour, info, unreadable, generated,
        ])
    }
}
