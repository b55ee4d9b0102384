#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

/// A one-way "please stop" shared by a daemon's threads. Waiters can `poll(2)` its descriptor
/// (the read end of a pipe that becomes readable when triggered), so a sleeping worker wakes at
/// once.
public final class StopSignal: Sendable {
    private let flag = Atomic<Bool>(false)
    /// Readable once triggered.
    public let descriptor: Int32
    private let writeEnd: Int32
    private let sources = Mutex<[SignalSourceBox]>([])

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

    /// Triggers this signal on SIGTERM and SIGINT (the signals are ignored for their default
    /// action first, then observed through dispatch sources).
    public func triggerOnTermination(_ handler: @escaping @Sendable (Int32) -> Void = { _ in }) {
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                handler(number)
                self?.trigger()
            }
            source.resume()
            let box = SignalSourceBox(source)
            sources.withLock { $0.append(box) }
        }
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

/// Keeps a dispatch signal source alive. Dispatch sources are thread-safe; the box only says so.
private final class SignalSourceBox: @unchecked Sendable {
    let source: any DispatchSourceSignal
    init(_ source: any DispatchSourceSignal) { self.source = source }
}
