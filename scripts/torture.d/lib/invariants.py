#!/usr/bin/env python3
"""The invariant checker of the adversarial harness (scripts/torture).

    invariants.py check   [options]   every invariant; one line "VIOLATION <check>: …" each; exit 0/1
    invariants.py pending [options]   exit 0 when every acknowledged request is terminal and
                                      notified and the queues are empty, else 1 and one line
    invariants.py stats   [options]   key=value figures (requests by state, releases, messages)
    invariants.py snapshot [options]  records the paths under the outside roots (torture_init
                                      runs it, right after making the marker)

The spool is BASE/spool.conf (its spool_root, maildir_root); acknowledged submits are the ids in
BASE/acked, acknowledged cancels those in BASE/cancels, and the lines of BASE/problems (unclean
stops, settle timeouts, … recorded by common.sh) are reported as violations. Run `check` with the
daemons stopped (common.sh's `settle` leaves them so).

Checks (--skip NAME to leave one out):
  problems  what the campaign recorded in BASE/problems
  acked     every acknowledged request is present (`spoolctl status ID --json`) and terminal:
            confirmed (assigned and notified), rejected or cancelled with notified_at set, or
            completed; an acknowledged cancel ends cancelled (or rejected: the allocator's cancel
            of a rejected request changes nothing); every acknowledged request is in the journal
            (the rebuilt index) and in the allocator store
  queues    the allocation and notification queues are empty (nothing ready, deferred, active)
            and nothing is dead-lettered (unless --allow-dead)
  overlap   no unit holds two rentals with overlapping periods (SQL over the allocator store:
            rentals in state 'assigned' or 'completed', periods [start_day, end_day)); the store
            agrees with the requests' statuses (an 'assigned' rental belongs to a request that is
            assigned/confirmed on that unit, so every unit a cancelled request held is released);
            every rental's unit exists and has the request's size
  maildir   read with mailbox.Maildir: at most one message per (customer, request, outcome)
            (headers X-Request-ID, X-Notification-Kind), each in the request's customer's
            Maildir, and a message for every notified outcome of an acknowledged request
  index     the status index equals a rebuild from the journal: the spool is copied, `spoolctl
            index rebuild` runs on the copy, and the entity and entity_key rows of both files are
            compared, every column
  outside   nothing written outside the spool: the sentinel HOME, TMPDIR and working directory
            of every product process are empty, and under /etc /var /root /home /usr/local
            (except the excluded noisy paths) no path appeared or disappeared since the snapshot
            and no file changed after the marker
"""
import argparse
import concurrent.futures
import json
import mailbox
import os
import random
import shutil
import sqlite3
import subprocess
import sys

TERMINAL = {"confirmed", "rejected", "cancelled", "completed"}
NEEDS_NOTICE = {"rejected": "rejection", "cancelled": "cancellation", "confirmed": "confirmation"}
CHECKS = ["problems", "acked", "queues", "overlap", "maildir", "index", "outside"]
# Roots of the outside-writes check, and paths under them that other software writes all the
# time (package manager, logs, caches of the toolchain and shells). A write the product made
# there would be missed: see docs/reliability.md, "Limits of the harness".
OUTSIDE_ROOTS = ["/etc", "/var", "/root", "/home", "/usr/local"]
OUTSIDE_NOISY = ["/var/log", "/var/cache", "/var/lib/apt", "/var/lib/dpkg", "/var/lib/systemd",
                 "/var/lib/dhcp", "/var/lib/logrotate", "/var/lib/private", "/var/lib/machines",
                 "/var/tmp", "/var/mail", "/var/spool/cron", "/root/.cache", "/root/.swiftpm",
                 "/root/.local", "/root/.config", "/root/.pyenv", "/root/.rustup", "/root/.cargo", "/root/.claude", "/root/.npm", "/root/.bash_history",
                 "/root/.python_history", "/root/.lesshst", "/root/.viminfo", "/root/.wget-hsts",
                 "/etc/ld.so.cache", "/etc/mtab", "/etc/resolv.conf"]


class Checker:
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

    # -- pending ---------------------------------------------------------------------------

    def pending(self):
        """Lines describing what is not settled yet (empty when settled)."""
        statuses = self.listed()
        missing = [i for i in self.acked if i not in statuses]
        for request_id, (code, value) in self.fetch_statuses(missing).items():
            if code == 0:
                statuses[request_id] = value
        waiting = []
        for request_id in self.acked:
            status = statuses.get(request_id)
            if status is None:
                waiting.append(f"{request_id}:missing")
            elif not settled(status):
                waiting.append(f"{request_id}:{status['state']}{'' if status.get('notified_at') else '(not notified)'}")
        lines = []
        if waiting:
            lines.append(f"{len(waiting)} of {len(self.acked)} acknowledged requests not terminal: {' '.join(waiting[:8])}")
        busy = {name: counts for name, counts in self.queue_counts().items()
                if counts.get("ready", 0) or counts.get("active", 0) or counts.get("deferred", 0)}
        if busy:
            lines.append("queues not empty: " + ", ".join(f"{name} {counts}" for name, counts in sorted(busy.items())))
        return lines

    # -- checks ----------------------------------------------------------------------------

    def check_problems(self):
        path = os.path.join(self.base, "problems")
        if os.path.exists(path):
            for line in open(path, encoding="utf-8", errors="replace"):
                if line.strip():
                    self.violation("problems", line.strip())

    def check_acked(self):
        self.statuses = {}
        # `spoolctl status ID --json` for every acknowledged request, or (--status-limit N, quick
        # mode's default 150) for N of them chosen at random plus every one `spoolctl list` does
        # not show; the others are judged by their `list --json` entry (the same index rows).
        ids, listed = self.acked, {}
        limit = self.args.status_limit
        if limit is None:
            limit = 0 if os.environ.get("TORTURE_MODE") == "full" else 150
        if limit and len(self.acked) > limit:
            listed = self.listed()
            rng = random.Random(os.environ.get("TORTURE_SEED", "1"))
            sample = set(rng.sample(self.acked, limit))
            ids = [i for i in self.acked if i in sample or i not in listed]
        fetched = self.fetch_statuses(ids)
        for request_id in self.acked:
            if request_id not in fetched:
                fetched[request_id] = (0, listed[request_id])
        for request_id, (code, value) in sorted(fetched.items()):
            if code != 0:
                self.violation("acked", f"acknowledged request {request_id} not found: spoolctl status exited {code}: {value}")
                continue
            self.statuses[request_id] = value
            if value.get("id") != request_id:
                self.violation("acked", f"spoolctl status {request_id} answered for {value.get('id')}")
            if not settled(value):
                notified = "notified" if value.get("notified_at") else "not notified"
                self.violation("acked", f"acknowledged request {request_id} is not terminal: {value.get('state')} ({notified})")
            if request_id in self.cancels and value.get("state") not in ("cancelled", "rejected", "completed"):
                self.violation("acked", f"cancel of {request_id} was acknowledged but the request ended {value.get('state')}")
        if self.args.all_terminal:
            for request_id, status in sorted(self.listed().items()):
                if request_id not in self.statuses and not settled(status):
                    self.violation("acked", f"request {request_id} (not acknowledged: a killed submit) is not terminal: {status.get('state')}")
        for request_id in sorted(self.cancels - set(self.acked)):
            self.violation("acked", f"cancel of {request_id} acknowledged for a request never acknowledged")

    def check_queues(self):
        for name, counts in sorted(self.queue_counts().items()):
            for field in ("ready", "deferred", "active"):
                if counts.get(field, 0):
                    self.violation("queues", f"queue {name} still has {counts[field]} {field} item(s) after settling")
            if counts.get("dead", 0) and not self.args.allow_dead:
                self.violation("queues", f"queue {name} has {counts['dead']} dead-lettered item(s) (spoolctl dead list --queue {name})")

    def copy_spool(self):
        """A copy of the spool (the daemons are stopped) under WORK/check: the checks read it."""
        root = os.path.join(self.args.work or self.base, "check")
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        copy = os.path.join(root, "spool")
        subprocess.run(["cp", "-a", self.spool, copy], check=True)
        return root, copy

    def check_overlap(self, copy):
        path = os.path.join(copy, "allocator", "state.sqlite")
        if not os.path.exists(path):
            if self.acked:
                self.violation("overlap", f"no allocator store at {path}")
            return
        db = sqlite3.connect(path)
        # Two rentals of one unit overlap when each starts before the other ends (end_day is the
        # day after the last day). 'completed' rentals held their unit too.
        for row in db.execute("""
                SELECT a.unit_id, a.request_id, a.start_day, a.end_day, b.request_id, b.start_day, b.end_day
                FROM rental a JOIN rental b ON a.unit_id = b.unit_id AND a.request_id < b.request_id
                WHERE a.state IN ('assigned', 'completed') AND b.state IN ('assigned', 'completed')
                  AND a.start_day < b.end_day AND b.start_day < a.end_day"""):
            self.violation("overlap", f"unit {row[0]} is assigned to {row[1]} (days {row[2]}-{row[3]}) and {row[4]} (days {row[5]}-{row[6]})")
        units = {row[0]: row[1] for row in db.execute("SELECT id, size FROM unit")}
        rentals = {row[0]: row[1:] for row in db.execute("SELECT request_id, state, unit_id FROM rental")}
        db.close()
        for request_id in self.acked:
            if request_id not in rentals:
                self.violation("overlap", f"acknowledged request {request_id} is not in the allocator store (never decided)")
        for request_id, (state, unit) in sorted(rentals.items()):
            status = self.statuses.get(request_id)
            if unit is not None and unit not in units:
                self.violation("overlap", f"rental {request_id} names unit {unit}, which is not in the inventory")
            if status is None:
                continue  # not acknowledged (a killed submit); still checked for overlaps above
            if unit is not None and unit in units and units[unit] != status.get("size"):
                self.violation("overlap", f"request {request_id} for size {status.get('size')} holds unit {unit} of size {units[unit]}")
            shown = status.get("state")
            expected = {"assigned": ("assigned", "confirmed"), "cancelled": ("cancelled",),
                        "rejected": ("rejected",), "completed": ("completed",)}.get(state, ())
            if shown not in expected:
                self.violation("overlap", f"request {request_id} is '{state}' in the allocator store but {shown} in its status"
                               + (" (a cancelled request still holds its unit)" if state == "assigned" and shown == "cancelled" else ""))
            elif state == "assigned" and status.get("unit") != unit:
                self.violation("overlap", f"request {request_id} holds unit {unit} in the store but shows unit {status.get('unit')}")

    def check_maildir(self, copy):
        root = self.maildir_root
        if os.path.realpath(root).startswith(os.path.realpath(self.spool) + os.sep):
            root = os.path.join(copy, os.path.relpath(os.path.realpath(root), os.path.realpath(self.spool)))
        seen = {}
        if os.path.isdir(root):
            for customer in sorted(os.listdir(root)):
                path = os.path.join(root, customer)
                if not os.path.isdir(os.path.join(path, "new")):
                    continue
                box = mailbox.Maildir(path, factory=None, create=False)
                for key in box.iterkeys():
                    message = box.get_message(key)
                    request_id, kind = message.get("X-Request-ID"), message.get("X-Notification-Kind")
                    if not request_id or not kind:
                        self.violation("maildir", f"message {customer}/{key} has no X-Request-ID or X-Notification-Kind")
                        continue
                    seen.setdefault((customer, request_id, kind), []).append(key)
                    status = self.statuses.get(request_id)
                    if status is not None and status.get("customer") != customer:
                        self.violation("maildir", f"message {kind} of {request_id} (customer {status.get('customer')}) is in the Maildir of {customer}")
        for (customer, request_id, kind), keys in sorted(seen.items()):
            if len(keys) > 1:
                self.violation("maildir", f"customer {customer} has {len(keys)} {kind} messages for request {request_id}: {', '.join(sorted(keys))}")
        delivered = {(request_id, kind) for (_, request_id, kind) in seen}
        for request_id, status in sorted(self.statuses.items()):
            kind = NEEDS_NOTICE.get(status.get("state"))
            if kind and (status.get("notified_at") or status.get("state") == "confirmed") and (request_id, kind) not in delivered:
                self.violation("maildir", f"request {request_id} is {status.get('state')} and notified but its customer has no {kind} message")

    def check_index(self, root, copy):
        index = os.path.join(copy, "index", "status.sqlite")
        if not os.path.exists(index):
            if self.acked:
                self.violation("index", f"no status index at {index}")
            return
        before = os.path.join(root, "index-before")
        os.makedirs(before)
        for suffix in ("", "-wal"):
            if os.path.exists(index + suffix):
                shutil.copy2(index + suffix, os.path.join(before, "status.sqlite" + suffix))
        live = index_rows(os.path.join(before, "status.sqlite"))
        result = self.ctl("index", "rebuild", "--spool", copy, "--json", timeout=600)
        if result.returncode not in self.args.allow_rebuild_exit:
            self.violation("index", f"spoolctl index rebuild of a copy exited {result.returncode}: {result.stderr.strip()[:300]}")
            if result.returncode != 65:
                return
        rebuilt = index_rows(index)
        # Compared: every column of entity (id, version, state, updated_at, keys, document) and
        # every entity_key row. Not compared: the table `projection` (the journal position the
        # index has consumed: bookkeeping of the catch-up, not an entity row; a rebuild records
        # the end of the journal it read) and SQLite's own tables.
        for table in ("entity", "entity_key"):
            a, b = live[table], rebuilt[table]
            only_live, only_rebuilt = a - b, b - a
            ids_live = {row[0] for row in only_live}
            ids_rebuilt = {row[0] for row in only_rebuilt}
            for request_id in sorted(ids_live | ids_rebuilt)[:20]:
                mine = sorted(row for row in only_live if row[0] == request_id)
                theirs = sorted(row for row in only_rebuilt if row[0] == request_id)
                if table == "entity" and len(mine) == 1 and len(theirs) == 1:
                    columns = ("id", "version", "state", "updated_at", "keys", "document")
                    differ = [f"{c}: {short(x)} vs {short(y)}" for c, x, y in zip(columns, mine[0], theirs[0]) if x != y]
                    self.violation("index", f"entity row of {request_id} differs from a rebuild (index vs rebuild): {'; '.join(differ)}")
                else:
                    self.violation("index", f"{table} rows of {request_id} differ from a rebuild: index {short(mine)} rebuild {short(theirs)}")
            extra = len(ids_live | ids_rebuilt) - 20
            if extra > 0:
                self.violation("index", f"{table}: {extra} more ids differ from a rebuild")
        journaled = {row[0]: row for row in rebuilt["entity"]}
        for request_id in self.acked:
            row = journaled.get(request_id)
            if row is None:
                self.violation("index", f"acknowledged request {request_id} is not in the journal (a rebuild does not know it)")
            elif row[2] not in TERMINAL:
                self.violation("index", f"acknowledged request {request_id} is {row[2]} in the journal (rebuilt index)")

    def check_outside(self):
        for name in ("home", "tmp", "cwd"):
            path = os.path.join(self.sentinel, name)
            if not os.path.isdir(path):
                self.violation("outside", f"sentinel directory {path} is gone")
                continue
            for dirpath, dirnames, filenames in os.walk(path):
                for entry in dirnames + filenames:
                    self.violation("outside", f"written into the sentinel {name.upper() if name != 'cwd' else 'working directory'}: {os.path.join(dirpath, entry)}")
        marker = os.path.join(self.sentinel, "marker")
        if not os.path.exists(marker):
            self.violation("outside", f"no marker file {marker}")
            return
        before_path = os.path.join(self.sentinel, "outside.before")
        if not os.path.exists(before_path):
            self.violation("outside", f"no snapshot {before_path} (invariants.py snapshot at the start)")
            return
        with open(before_path, encoding="utf-8", errors="surrogateescape") as file:
            before = {line.rstrip("\n") for line in file}
        now = {path: kind for path, kind in self.outside_paths(marker)}
        # A new path (file or directory), a file whose content or inode changed after the marker,
        # or a path that disappeared. A directory whose entries changed is not reported itself
        # (its new entries are): other software creates and removes lock files in /etc.
        changed = sorted([path for path, kind in now.items() if path not in before or kind == "changed-file"]
                         + [f"{path} (removed)" for path in before - set(now)])
        for path in changed[:30]:
            self.violation("outside", f"written during the campaign, outside the spool: {path}")
        if len(changed) > 30:
            self.violation("outside", f"{len(changed) - 30} more paths changed outside the spool")

    def outside_paths(self, marker):
        """(path, kind) for every path under the outside roots, excluded trees pruned; kind is
        "changed-file" for a non-directory modified (mtime or ctime) after `marker`."""
        excluded = OUTSIDE_NOISY + (self.args.outside_exclude or [])
        excluded += [p for p in (self.args.work, self.base, os.path.dirname(os.path.realpath(self.args.bin))) if p]
        prune = []
        for path in excluded:
            prune += ["-path", os.path.realpath(path), "-o"]
        roots = [top for top in OUTSIDE_ROOTS if os.path.isdir(top)]
        result = subprocess.run(["find", *roots, "-xdev", "(", *prune[:-1], ")", "-prune", "-o",
                                 "(", "!", "-type", "d", "(", "-newer", marker, "-o", "-cnewer", marker, ")",
                                 "-printf", "changed-file %p\\n", ")", "-o", "-printf", "path %p\\n"],
                                capture_output=True, text=True, errors="surrogateescape")
        for line in result.stdout.splitlines():
            kind, _, path = line.partition(" ")
            yield path, kind

    def snapshot(self):
        """Records every path under the outside roots (the start of the outside check)."""
        marker = os.path.join(self.sentinel, "marker")
        with open(os.path.join(self.sentinel, "outside.before"), "w", encoding="utf-8", errors="surrogateescape") as file:
            for path, _ in self.outside_paths(marker):
                file.write(path + "\n")

    def run_checks(self):
        skip = set(self.args.skip or [])
        unknown = skip - set(CHECKS)
        if unknown:
            raise SystemExit(f"invariants.py: unknown check(s) {', '.join(sorted(unknown))}; checks are {', '.join(CHECKS)}")
        if "problems" not in skip:
            self.check_problems()
        if "acked" not in skip or "overlap" not in skip or "maildir" not in skip:
            before = len(self.violations)
            self.check_acked()
            if "acked" in skip:
                del self.violations[before:]
        if "queues" not in skip:
            self.check_queues()
        if {"overlap", "maildir", "index"} - skip:
            root, copy = self.copy_spool()
            if "overlap" not in skip:
                self.check_overlap(copy)
            if "maildir" not in skip:
                self.check_maildir(copy)
            if "index" not in skip:
                self.check_index(root, copy)
            if not self.args.keep_copy:
                shutil.rmtree(root, ignore_errors=True)
        if "outside" not in skip:
            self.check_outside()

    def stats(self):
        """Figures for a RESULT line."""
        figures = {"acked": len(self.acked), "cancels_acked": len(self.cancels)}
        states = {}
        for status in self.listed().values():
            states[status["state"]] = states.get(status["state"], 0) + 1
        for state in sorted(states):
            figures[state] = states[state]
        path = os.path.join(self.spool, "allocator", "state.sqlite")
        if os.path.exists(path):
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            figures["releases"] = db.execute("SELECT count(*) FROM rental WHERE state = 'cancelled' AND unit_id IS NOT NULL").fetchone()[0]
            figures["holding"] = db.execute("SELECT count(*) FROM rental WHERE state = 'assigned'").fetchone()[0]
            db.close()
        messages = 0
        if os.path.isdir(self.maildir_root):
            for customer in os.listdir(self.maildir_root):
                for sub in ("new", "cur"):
                    path = os.path.join(self.maildir_root, customer, sub)
                    if os.path.isdir(path):
                        messages += len(os.listdir(path))
        figures["messages"] = messages
        return figures


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


def index_rows(path):
    db = sqlite3.connect(path)
    rows = {"entity": set(db.execute("SELECT id, version, state, updated_at, keys, document FROM entity")),
            "entity_key": set(db.execute("SELECT entity_id, name, value FROM entity_key"))}
    db.close()
    return rows


def short(rows):
    text = repr(rows)
    return text if len(text) < 400 else text[:400] + "…"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["check", "pending", "stats", "snapshot"])
    parser.add_argument("--bin", default=os.environ.get("TORTURE_BIN"), help="directory of spoolctl (default $TORTURE_BIN)")
    parser.add_argument("--base", default=os.environ.get("TORTURE_BASE") or os.environ.get("TORTURE_WORK"),
                        help="the spool's base directory (spool.conf, acked, cancels, problems)")
    parser.add_argument("--work", default=os.environ.get("TORTURE_WORK"), help="scratch directory (default $TORTURE_WORK)")
    parser.add_argument("--sentinel", help="sentinel directory (home, tmp, cwd, marker); default WORK/sentinel")
    parser.add_argument("--skip", action="append", metavar="CHECK", help="leave out a check: " + ", ".join(CHECKS))
    parser.add_argument("--allow-rebuild-exit", type=int, action="append", default=None, metavar="N",
                        help="exit status of `index rebuild` that is not a violation (default 0; repeat)")
    parser.add_argument("--allow-dead", action="store_true", help="dead-lettered items are not a violation")
    parser.add_argument("--outside-exclude", action="append", metavar="PATH", help="one more path the outside check skips")
    parser.add_argument("--status-limit", type=int, metavar="N",
                        help="run `spoolctl status` for at most N acknowledged requests (random, plus any `list` "
                             "does not show; the rest are judged from `list --json`); 0: all. Default: all in full "
                             "mode (TORTURE_MODE=full), 150 otherwise")
    parser.add_argument("--all-terminal", action="store_true",
                        help="every request `spoolctl list` shows, acknowledged or not, must be terminal and notified too")
    parser.add_argument("--keep-copy", action="store_true", help="keep the spool copy in WORK/check")
    args = parser.parse_args()
    if not args.bin or not args.base:
        parser.error("--bin and --base (or TORTURE_BIN and TORTURE_BASE/TORTURE_WORK) are needed")
    args.allow_rebuild_exit = set(args.allow_rebuild_exit or [0])
    checker = Checker(args)
    if args.command == "pending":
        lines = checker.pending()
        for line in lines:
            print(line)
        return 1 if lines else 0
    if args.command == "snapshot":
        checker.snapshot()
        return 0
    if args.command == "stats":
        print(" ".join(f"{key}={value}" for key, value in checker.stats().items()))
        return 0
    checker.run_checks()
    for line in checker.violations:
        print(line)
    return 1 if checker.violations else 0


if __name__ == "__main__":
    sys.exit(main())
