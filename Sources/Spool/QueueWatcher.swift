#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Wakes a consumer within milliseconds of an enqueue, and otherwise lets it sleep.
///
/// Watches every `ready/<bucket>` directory of one queue with inotify (through
/// `/proc/self/fd/N`, so the watch is on the directory already opened without following links).
/// ``wait(timeout:)`` blocks in `poll(2)` until an item arrives or the timeout passes, using no
/// CPU meanwhile; the names of arrived items are handed to the queue as its next claim
/// candidates. If inotify is unavailable (limits exhausted), waits fall back to periodic scans:
/// slower to react, never wrong. Use one watcher per consumer loop.
public final class QueueWatcher {
    private let queue: Queue
    private let descriptor: Int32
    private var buckets: [Int32: String] = [:]

    /// Starts watching `queue`, creating all its bucket directories first.
    public init(queue: Queue) throws(SpoolError) {
        self.queue = queue
        descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if descriptor < 0 {
            let code = errno  // before the logger runs: its metadata is evaluated lazily
            queue.logger.warning("inotify unavailable, falling back to periodic scans", metadata: ["errno": "\(code)"])
        }
        let mask = UInt32(IN_MOVED_TO | IN_CREATE)
        for index in 0..<Queue.bucketCount {
            let name = ItemID.bucketName(index)
            let directory = try queue.bucket(name)
            guard descriptor >= 0 else { continue }
            let watch = inotify_add_watch(descriptor, "/proc/self/fd/\(directory.descriptor)", mask)
            if watch >= 0 {
                buckets[watch] = name
            } else {
                let code = errno  // before the logger runs: its metadata is evaluated lazily
                queue.logger.warning("cannot watch bucket, relying on periodic scans", metadata: ["bucket": "\(name)", "errno": "\(code)"])
            }
        }
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Blocks until something is enqueued or `timeout` passes, whichever is first; returns true
    /// when woken by an arrival. A deferred item's due time is not an arrival: callers bound the
    /// timeout by ``Queue/nextDueTime``.
    /// A readable `wakeDescriptor` (a stop signal's pipe) ends the wait at once too.
    @discardableResult
    public func wait(timeout: Duration, wakeDescriptor: Int32? = nil) -> Bool {
        let milliseconds = Int32(clamping: max(0, timeout.milliseconds))
        if descriptor >= 0, drain() { return true }
        var pollers = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)]
        if let wakeDescriptor { pollers.append(pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0)) }
        let ready = poll(&pollers, nfds_t(pollers.count), milliseconds)
        return ready > 0 && descriptor >= 0 && drain()
    }

    /// Reads pending events, hinting each new name to the queue. True if there was any.
    private func drain() -> Bool {
        var any = false
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { return any }
            any = true
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= count {
                let (watch, length) = buffer.withUnsafeBytes { raw in
                    let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    return (event.wd, Int(event.len))
                }
                let nameStart = offset + MemoryLayout<inotify_event>.size
                if length > 0, let bucket = buckets[watch] {
                    let raw = buffer[nameStart..<min(nameStart + length, count)]
                    let name = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                    queue.hint(bucket: bucket, name: name)
                }
                offset = nameStart + length
            }
        }
    }
}
