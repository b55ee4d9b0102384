"""Running the real binaries on a spool directory: `spoolctl` with a timeout, the two daemons
started in their own session and stopped by SIGTERM (killed when they do not stop), the depth
of the queues, and one run of both daemons until the queues drain."""
import os
import signal
import subprocess
import time


class Processes:
    def env(self, root):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPOOL_")}
        env.update({"SPOOL_CONFIG": os.path.join(root, "spool.conf"), "SPOOL_ROOT": os.path.join(root, "spool"),
                    "SPOOL_LOG_LEVEL": "info", "SWIFT_BACKTRACE": "enable=no"})
        return env

    def ctl(self, root, *arguments, timeout=None, stdin=None):
        """Runs spoolctl; returns (rc, stdout, stderr). rc is -signal for a signal, None on timeout."""
        try:
            done = subprocess.run([os.path.join(self.bin, "spoolctl"), *arguments], env=self.env(root), cwd=root,
                                  capture_output=True, timeout=timeout or self.timeout, input=stdin)
            return done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired as expired:
            return None, (expired.stdout or b"").decode(errors="replace"), (expired.stderr or b"").decode(errors="replace")

    def start(self, root, daemon):
        log = open(os.path.join(root, f"{daemon}.{time.monotonic_ns()}.log"), "w+b")
        process = subprocess.Popen([os.path.join(self.bin, daemon)], env=self.env(root), cwd=root,
                                   stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        process.log = log
        return process

    @staticmethod
    def stop(process, timeout=15):
        """SIGTERM, wait; returns (rc, stderr); rc None when it had to be killed."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                process.log.seek(0)
                return None, process.log.read().decode(errors="replace")
        process.log.seek(0)
        text = process.log.read().decode(errors="replace")
        process.log.close()
        return process.returncode, text

    def queue_depth(self, root, queues=("allocation", "notifications")):
        count = 0
        for queue in queues:
            base = os.path.join(root, "spool", "queues", queue)
            for sub, _, files in os.walk(os.path.join(base, "ready")):
                count += len(files)
            active = os.path.join(base, "active")
            if os.path.isdir(active):
                count += len(os.listdir(active))
        return count

    def run_daemons(self, root, wait):
        """Starts both daemons, waits until the queues drain (or both exited, or `wait` s), stops
        them. Returns {daemon: (rc, stderr, early)} where early says it exited by itself."""
        processes = {d: self.start(root, d) for d in ("spool-allocator", "spool-notifier")}
        deadline = time.monotonic() + wait
        time.sleep(0.3)
        while time.monotonic() < deadline:
            if all(p.poll() is not None for p in processes.values()):
                break
            if processes["spool-allocator"].poll() is not None and self.queue_depth(root, ("notifications",)) == 0:
                break
            if self.queue_depth(root) == 0:
                time.sleep(0.3)  # let the last status be journaled
                if self.queue_depth(root) == 0:
                    break
            time.sleep(0.1)
        result = {}
        for name, process in processes.items():
            early = process.poll() is not None
            rc, text = self.stop(process)
            result[name] = (rc, text, early)
        return result
