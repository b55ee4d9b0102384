"""The spool the invariant checker reads (invariants.py): its configuration and base directory
(acked, cancels), the violation lines, `spoolctl` run in the sentinel environment (status, list,
queues), the copy of the spool the checks read, and the helpers they share."""
import concurrent.futures
import json
import os
import shutil
import subprocess

# A waiting request (issue 11) is settled once told it waits: it stays so until a release
# promotes it or its start date expires it (the campaigns' periods lie in the future).
TERMINAL = {"confirmed", "rejected", "cancelled", "completed", "waitlisted", "expired"}
NEEDS_NOTICE = {"rejected": "rejection", "cancelled": "cancellation", "confirmed": "confirmation",
                "waitlisted": "waitlisted", "expired": "expiry"}


class Spool:
    def __init__(self, args):
        self.args = args
        self.base = os.path.abspath(args.base)
        self.config_path = os.path.join(self.base, "spool.conf")
        self.config = read_config(self.config_path)
        self.spool = self.config.get("spool_root") or os.path.join(self.base, "spool")
        self.maildir_root = self.config.get("maildir_root") or os.path.join(self.spool, "maildir")
        self.sentinel = args.sentinel or os.path.join(args.work or self.base, "sentinel")
        self.violations = []
        self.acked = read_ids(os.path.join(self.base, "acked"))
        self.cancels = set(read_ids(os.path.join(self.base, "cancels")))
        self.statuses = {}

    # -- helpers ---------------------------------------------------------------------------

    def violation(self, check, text):
        self.violations.append(f"VIOLATION {check}: {text}")

    def env(self):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "HOME": os.path.join(self.sentinel, "home"), "TMPDIR": os.path.join(self.sentinel, "tmp"),
               "SWIFT_BACKTRACE": "enable=no", "SPOOL_CONFIG": self.config_path, "SPOOL_ROOT": "",
               "SPOOL_LOG_LEVEL": "error"}
        for word in os.environ.get("TORTURE_ENV_WORDS", "").split():
            name, _, value = word.partition("=")
            env[name] = value
        return env

    def ctl(self, *arguments, timeout=120):
        cwd = os.path.join(self.sentinel, "cwd")
        if not os.path.isdir(cwd):
            cwd = self.base
        return subprocess.run([os.path.join(self.args.bin, "spoolctl"), *arguments], env=self.env(), cwd=cwd,
                              capture_output=True, text=True, timeout=timeout)

    def fetch_statuses(self, ids):
        """`spoolctl status ID --json` for each id (4 at a time): id -> (exit status, dict or text)."""
        def one(request_id):
            result = self.ctl("status", request_id, "--json")
            if result.returncode == 0:
                try:
                    return request_id, (0, json.loads(result.stdout))
                except ValueError:
                    return request_id, (-1, "unparsable output: " + result.stdout[:200])
            return request_id, (result.returncode, (result.stderr or result.stdout).strip().splitlines()[-1:] or [""])
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            return dict(pool.map(one, ids))

    def listed(self):
        """Every status `spoolctl list --json` shows, by id."""
        result = self.ctl("list", "--json")
        if result.returncode != 0:
            raise RuntimeError(f"spoolctl list exited {result.returncode}: {result.stderr.strip()}")
        return {status["id"]: status for status in json.loads(result.stdout or "[]")}

    def queue_counts(self):
        result = self.ctl("queues", "--json")
        if result.returncode != 0:
            raise RuntimeError(f"spoolctl queues exited {result.returncode}: {result.stderr.strip()}")
        return json.loads(result.stdout)["queues"]

    def copy_spool(self):
        """A copy of the spool (the daemons are stopped) under WORK/check: the checks read it."""
        root = os.path.join(self.args.work or self.base, "check")
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        copy = os.path.join(root, "spool")
        subprocess.run(["cp", "-a", self.spool, copy], check=True)
        return root, copy


def settled(status):
    state = status.get("state")
    if state not in TERMINAL:
        return False
    return state in ("confirmed", "completed") or bool(status.get("notified_at"))


def read_ids(path):
    if not os.path.exists(path):
        return []
    seen, ids = set(), []
    for line in open(path, encoding="utf-8", errors="replace"):
        word = line.strip()
        if word and word not in seen:
            seen.add(word)
            ids.append(word)
    return ids


def read_config(path):
    config = {}
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            line = line.split("#", 1)[0].strip()
            if "=" in line:
                key, _, value = line.partition("=")
                config[key.strip()] = value.strip()
    return config

