#if canImport(Glibc)
import Glibc
#endif

/// Runs `/bin/sh -c command` as the leader of a new process group, feeds it `input` on stdin
/// and keeps the tail of its stderr, never blocking on the hook:
///
/// - stdin and stderr are non-blocking pipes served by `poll(2)`: a hook that never reads its
///   input or writes megabytes to stderr cannot stall the notifier; stdout goes to `/dev/null`.
/// - The run ends when the shell exits, or at the deadline: then the whole process group gets
///   `SIGTERM`, and `SIGKILL` after a grace period (a hook that ignores `SIGTERM`).
/// - When the shell has exited, whatever it left running in its group (a grandchild holding the
///   pipes open) is killed with `SIGKILL` before the shell is reaped, so the group id cannot
///   have been reused; nothing waits for the pipes' end of file.
///
/// So a run takes at most `timeout` plus `grace` (plus one poll interval).
struct HookProcess {
    /// How a run ended.
    enum Outcome: Equatable {
        case exited(Int32)
        case signalled(Int32)
        case timedOut
    }

    let command: String
    let environment: [String: String]
    let timeout: Duration
    let grace: Duration

    /// Runs the hook; returns how it ended and the last line it wrote to stderr.
    ///
    /// - Throws: ``HookDelivery/Failure`` if it cannot be started.
    func run(input: [UInt8]) throws -> (outcome: Outcome, lastLine: String) {
        var inPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard pipe(&inPipe) == 0 else { throw startFailure("pipe", errno) }
        guard pipe(&errPipe) == 0 else {
            let code = errno
            close(inPipe[0]); close(inPipe[1])
            throw startFailure("pipe", code)
        }
        // pipe2(2) is not exported to Swift: set close-on-exec at once (the child gets its
        // copies through dup2, which clears the flag on the copy only).
        for fd in inPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        var childEnds = [inPipe[0], errPipe[1]]
        if null >= 0 { childEnds.append(null) }
        defer { for fd in childEnds { close(fd) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        if null >= 0 { posix_spawn_file_actions_adddup2(&actions, null, 1) } else { posix_spawn_file_actions_addclose(&actions, 1) }
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var mask = sigset_t(), defaults = sigset_t()
        sigemptyset(&mask)
        sigemptyset(&defaults)
        // The daemon ignores SIGPIPE and blocks its stop signals: the hook starts clean.
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD, SIGALRM] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let arguments: [String] = ["/bin/sh", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, envp)
        guard spawned == 0 else {
            close(inPipe[1]); close(errPipe[0])
            throw startFailure("spawn /bin/sh", spawned)
        }
        for fd in childEnds { close(fd) }
        childEnds = []

        var stdinFD: Int32 = inPipe[1], stderrFD: Int32 = errPipe[0]
        _ = fcntl(stdinFD, F_SETFL, fcntl(stdinFD, F_GETFL) | O_NONBLOCK)
        _ = fcntl(stderrFD, F_SETFL, fcntl(stderrFD, F_GETFL) | O_NONBLOCK)
        defer {
            if stdinFD >= 0 { close(stdinFD) }
            if stderrFD >= 0 { close(stderrFD) }
        }
        var tail: [UInt8] = []
        var sent = 0
        if input.isEmpty { close(stdinFD); stdinFD = -1 }

        func serve(milliseconds: Int32) {
            var fds: [pollfd] = []
            if stdinFD >= 0 { fds.append(pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0)) }
            if stderrFD >= 0 { fds.append(pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)) }
            if fds.isEmpty { usleep(UInt32(milliseconds) * 1000); return }
            _ = poll(&fds, nfds_t(fds.count), milliseconds)
            if stdinFD >= 0 {
                let count = input[sent...].withUnsafeBytes { Glibc.write(stdinFD, $0.baseAddress, $0.count) }
                if count > 0 { sent += count }
                if sent == input.count || (count < 0 && errno != EAGAIN && errno != EINTR) {
                    close(stdinFD)
                    stdinFD = -1
                }
            }
            drainErrors()
        }
        func drainErrors() {
            guard stderrFD >= 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(stderrFD, $0.baseAddress, $0.count) }
                if count > 0 {
                    tail += buffer[..<count]
                    if tail.count > 4096 { tail.removeFirst(tail.count - 4096) }
                    continue
                }
                if count == 0 || (errno != EAGAIN && errno != EINTR) {
                    close(stderrFD)
                    stderrFD = -1
                }
                return
            }
        }

        let deadline = ContinuousClock.now + timeout
        var outcome: Outcome?
        while outcome == nil {
            if hasExited(pid) {
                drainErrors()
                _ = kill(-pid, SIGKILL)  // the leader is a zombie until reaped: the group id is ours
                outcome = reap(pid)
            } else if ContinuousClock.now >= deadline {
                _ = kill(-pid, SIGTERM)
                let graceEnd = ContinuousClock.now + grace
                while !hasExited(pid) && ContinuousClock.now < graceEnd { serve(milliseconds: 10) }
                _ = kill(-pid, SIGKILL)
                _ = reap(pid)
                outcome = .timedOut
            } else {
                serve(milliseconds: 20)
            }
        }
        let text = String(decoding: tail, as: UTF8.self)
        // One clean line for logs and `status`: control characters (NUL, ESC, …) become spaces.
        let last = text.split(whereSeparator: \.isNewline).last.map { MessageRenderer.clean(String($0)).trimmingSpaces }
            .map { String($0.prefix(300)) } ?? ""
        return (outcome ?? .timedOut, last)
    }

    /// Whether `pid` has exited, without reaping it (`WNOWAIT`).
    private func hasExited(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return errno == ECHILD }
        return info._sifields._kill.si_pid != 0
    }

    private func reap(_ pid: pid_t) -> Outcome {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7F
        return signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
    }

    private func startFailure(_ step: String, _ code: Int32) -> HookDelivery.Failure {
        HookDelivery.Failure(description: "hook cannot start: \(step): \(String(cString: strerror(code))) (errno \(code))")
    }
}
