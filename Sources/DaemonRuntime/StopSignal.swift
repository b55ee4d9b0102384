#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Synchronization

/// A one-way "please stop" shared by a daemon's threads. Waiters can `poll(2)` its descriptor
/// (the read end of a pipe that becomes readable when triggered), so a sleeping worker wakes at
/// once.
public final class StopSignal: Sendable {
    private let flag = Atomic<Bool>(false)
    /// Readable once triggered.
    public let descriptor: Int32
    private let writeEnd: Int32

    /// An untriggered signal.
    public init() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            for end in ends {
                _ = fcntl(end, F_SETFD, FD_CLOEXEC)
                _ = fcntl(end, F_SETFL, O_NONBLOCK)
            }
        } else {
            ends = [-1, -1]
        }
        descriptor = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        close(descriptor)
        close(writeEnd)
    }

    /// True once ``trigger()`` was called.
    public var isTriggered: Bool { flag.load(ordering: .acquiring) }

    /// Asks every waiter to stop. Idempotent.
    public func trigger() {
        guard !flag.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    /// Triggers this signal on SIGTERM and SIGINT, calling `handler` first (on a thread of its
    /// own, not in signal context).
    ///
    /// The signals are blocked in the calling thread (call it at start-up, before other threads
    /// exist: they inherit the mask) and taken with `sigwait(3)` by a dedicated thread, so none
    /// is lost: a blocked signal is never discarded, it stays pending until taken. (Ignoring
    /// them first and observing them through dispatch sources lost a SIGTERM that arrived
    /// before libdispatch had registered its source: the daemon then never stopped.) Children
    /// that must not inherit the blocked mask reset it (see the notifier's hook runner).
    public func triggerOnTermination(_ handler: @escaping @Sendable (Int32) -> Void = { _ in }) {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waited = SignalSet(set)
        let thread = Thread { [weak self] in
            var set = waited.set
            while true {
                var number: Int32 = 0
                guard sigwait(&set, &number) == 0 else { continue }
                handler(number)
                self?.trigger()
            }
        }
        thread.name = "stop-signal"
        thread.start()
    }

    /// Sleeps until triggered or `timeout` passes; true if triggered.
    @discardableResult
    public func wait(timeout: Duration) -> Bool {
        if isTriggered { return true }
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        if descriptor >= 0 {
            _ = poll(&poller, 1, Int32(clamping: timeout.milliseconds))
        } else {
            usleep(UInt32(clamping: timeout.milliseconds * 1000))
        }
        return isTriggered
    }
}

/// A signal set handed to the waiting thread (a plain value, never mutated after creation).
private struct SignalSet: @unchecked Sendable {
    let set: sigset_t
    init(_ set: sigset_t) { self.set = set }
}

extension Duration {
    /// The duration in whole milliseconds.
    fileprivate var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
