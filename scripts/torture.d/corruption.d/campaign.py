#!/usr/bin/env python3
"""Corruption campaign (issue 8, item 3).

Builds a populated spool with the real binaries (decided, cancelled, queued requests; sealed and
live journal segments; index; allocator store; idempotency keys; delivery records; Maildirs;
state files), keeps a pristine copy, runs it once unmutated (the baseline), then for each kind of
file, many times: copies the pristine spool, truncates the file at a random offset or flips 1..n
random bytes (seeded), and runs the system on it: `spoolctl status`/`list`, `spoolctl reconcile`,
both daemons until the queues drain, `spoolctl reconcile --rebuild-index`, and the final
`status`. Every trial is judged against the baseline and the documented promises:

  crash       a process exits by a signal, or prints a Swift runtime failure ("Fatal error")
  hang        a command outlives its timeout
  loop        a daemon exits early with a code other than 65 (a damaged store: systemd does not
              restart it) and again when started once more (systemd would restart it forever),
              or exits 65 when the store is not what was damaged
  silent      an acknowledged request whose final state differs from the baseline (or that is
              gone) and that no report names (reconcile must exit non-zero naming it), except
              where the documentation says the damage is not detected (see UNPROMISED)
  copy        damage was reported (exit 65) but no copy appeared in corrupt/
  overlap     a unit assigned to overlapping periods in the allocator store
  duplicate   two messages for one outcome of one request in a Maildir

Stdlib only. Prints progress lines and one `RESULT corruption …` line; exit 0 iff no violation.
"""
import argparse
import concurrent.futures
import json
import os
import queue
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

KINDS = ["item", "journal-live", "journal-sealed", "index", "store", "idempotency", "delivered",
         "maildir", "state", "config", "import"]

# Kinds whose damage the product promises to copy to corrupt/ when it reports it.
COPY_PROMISED = {"item", "journal-live", "journal-sealed", "index", "store", "idempotency"}

# docs/reliability.md, Limits: a flipped value inside a well-formed page of the allocator store
# is not detected (flips only: a truncated store must be detected); Maildir messages carry no
# checksum (nothing reads them back).
UNPROMISED = {"store", "maildir"}

TERMINAL = {"confirmed", "rejected", "cancelled", "completed"}
CRASH_MARKERS = ("Fatal error", "Swift runtime failure", "Illegal instruction", "Segmentation fault",
                 "Trace/breakpoint", "Assertion failed", "Precondition failed")


class Campaign:
    def __init__(self, args):
        self.args = args
        self.bin = args.bin
        self.work = os.path.abspath(args.work)
        self.pristine = os.path.join(self.work, "pristine")
        self.trial_root = os.path.join(self.work, "trial")
        self.timeout = args.timeout
        self.violations = []
        self.stats = {kind: {"mutations": 0, "detected": 0, "recovered": 0, "lost": 0, "undetected": 0,
                             "violations": 0} for kind in args.kinds}
        self.baseline = {}
        self.manifest = []
        self.keyed = {}
        self.cancels = []

    # ---------------------------------------------------------------- processes

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

    # ---------------------------------------------------------------- the pristine spool

    def wait_for(self, root, ids, states, seconds=60):
        deadline = time.monotonic() + seconds
        pending = set(ids)
        while pending and time.monotonic() < deadline:
            for request in list(pending):
                rc, out, _ = self.ctl(root, "status", request, "--json")
                if rc == 0 and json.loads(out).get("state") in states:
                    pending.discard(request)
            if pending:
                time.sleep(0.2)
        if pending:
            raise SystemExit(f"corruption: setup: {sorted(pending)} did not reach {states}")

    def submit(self, root, rng, number, key=False):
        size = rng.choice(["S", "M", "L", "XL"])
        month = rng.randint(1, 9)
        customer = rng.choice(["alice", "bob", "carol", "dave"]) + "@example.com"
        arguments = ["submit", "--customer", customer, "--contact", customer, "--size", size,
                     "--from", f"2027-{month:02d}-01", "--months", str(rng.randint(1, 3)), "--json"]
        if key:
            arguments += ["--idempotency-key", f"key-{number}"]
        rc, out, err = self.ctl(root, *arguments)
        if rc != 0:
            raise SystemExit(f"corruption: setup: submit failed ({rc}): {err.strip()}")
        request = json.loads(out)["id"]
        self.manifest.append(request)
        if key:
            self.keyed[f"key-{number}"] = {"arguments": arguments, "id": request}
        return request

    def cancel(self, root, request):
        rc, _, err = self.ctl(root, "cancel", request)
        if rc != 0:
            raise SystemExit(f"corruption: setup: cancel {request} failed ({rc}): {err.strip()}")
        self.cancels.append(request)

    def invariants(self, root, exclude=(), skip=(), allow_rebuild_65=False):
        """The shared checker (lib/invariants.py) on the spool at `root`, every acknowledged
        request but `exclude` (those the damage destroyed and a report named). Returns the
        VIOLATION lines. The outside-writes check belongs to the whole run (the driver's)."""
        checker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib", "invariants.py")
        if not os.path.exists(checker):
            return []
        base = root + "-invariants"
        shutil.rmtree(base, ignore_errors=True)
        os.makedirs(base)
        with open(os.path.join(self.pristine, "spool.conf")) as conf:
            text = conf.read()
        with open(os.path.join(base, "spool.conf"), "w") as conf:
            conf.write(text + f"spool_root = {os.path.join(root, 'spool')}\n")
        with open(os.path.join(base, "acked"), "w") as acked:
            acked.write("".join(f"{i}\n" for i in self.manifest if i not in exclude))
        with open(os.path.join(base, "cancels"), "w") as cancels:
            cancels.write("".join(f"{i}\n" for i in self.cancels if i not in exclude))
        open(os.path.join(base, "problems"), "w").close()
        arguments = [sys.executable, checker, "check", "--bin", self.bin, "--base", base, "--work", base,
                     "--skip", "outside"]
        for name in skip:
            arguments += ["--skip", name]
        if allow_rebuild_65:  # damage reported (65) or a torn tail only cut (0)
            arguments += ["--allow-rebuild-exit", "0", "--allow-rebuild-exit", "65"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPOOL_")}
        try:
            done = subprocess.run(arguments, capture_output=True, timeout=300, env=env, cwd=base)
        except subprocess.TimeoutExpired:
            return ["invariants: the checker outlived 300 s"]
        lines = [l for l in done.stdout.decode(errors="replace").splitlines() if l.startswith("VIOLATION")]
        if done.returncode != 0 and not lines:
            lines = [f"invariants: checker exited {done.returncode}: {done.stderr.decode(errors='replace')[-300:]}"]
        shutil.rmtree(base, ignore_errors=True)
        return lines

    def age_live_segment(self, root):
        """Backdates the live segment's header by two hours (same length), so that the next append
        seals it: the real binaries then write the `.log.z` (there is no size setting)."""
        journal = os.path.join(root, "spool", "journal")
        live = sorted(n for n in os.listdir(journal) if n.endswith(".log"))[-1]
        path = os.path.join(journal, live)
        with open(path, "r+b") as handle:
            first = handle.readline()
            match = re.fullmatch(rb"spool-journal 1 (\d+)\n", first)
            old = str(int(match.group(1)) - 2 * 3600 * 1000).encode()
            assert len(old) == len(match.group(1))
            handle.seek(len(b"spool-journal 1 "))
            handle.write(old)

    def build(self):
        rng = random.Random(4242)
        root = self.trial_root
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(os.path.join(root, "spool"))
        with open(os.path.join(root, "spool.conf"), "w") as conf:
            conf.write("# corruption campaign\nsizes = S:1.5, M:3, L:6, XL:10\nmax_period_months = 36\n"
                       "breaker_high_water = 1000\nbreaker_low_water = 200\nbreaker_cooldown_seconds = 30\n"
                       "breaker_failure_threshold = 5\nallocator_max_workers = 2\nnotifier_max_workers = 2\n"
                       "max_attempts = 3\nhook_timeout_seconds = 5\nsender = Self Storage <noreply@localhost>\n")
        with open(os.path.join(root, "units.csv"), "w") as csv:
            csv.write("id,size,site\nS-1,S,North\nS-2,S,North\nM-1,M,North\nM-2,M,\"Main Street 1, rear\"\nL-1,L,South\nX-1,XL,South\n")
        with open(os.path.join(root, "units2.csv"), "w") as csv:
            csv.write("id,size,site\nS-3,S,East\nM-3,M,East\n\"L-2\",L,\"East, upstairs\"\nX-2,XL,East\n")
        rc, _, err = self.ctl(root, "units", "import", "units.csv")
        if rc != 0:
            raise SystemExit(f"corruption: setup: units import failed ({rc}): {err.strip()}")
        number = 0

        def phase(submits, cancels, seal_after):
            nonlocal number
            allocator, notifier = self.start(root, "spool-allocator"), self.start(root, "spool-notifier")
            ids = []
            for _ in range(submits):
                number += 1
                ids.append(self.submit(root, rng, number, key=number % 2 == 0))
            self.wait_for(root, ids, TERMINAL)
            decided = [i for i in ids if json.loads(self.ctl(root, "status", i, "--json")[1])["state"] == "confirmed"]
            for request in decided[:cancels]:
                self.cancel(root, request)
            self.wait_for(root, decided[:cancels], {"cancelled"})
            for process in (allocator, notifier):
                rc, text = self.stop(process)
                if rc != 0:
                    raise SystemExit(f"corruption: setup: daemon exited {rc}: {text[-500:]}")
            if seal_after:
                self.age_live_segment(root)
            return decided

        phase(8, 2, True)
        phase(6, 1, True)
        confirmed = phase(5, 0, False)
        # Notification items queued: the allocator decides while the notifier is stopped.
        allocator = self.start(root, "spool-allocator")
        ids = [self.submit(root, rng, n, key=n % 2 == 0) for n in range(number + 1, number + 4)]
        number += 3
        self.wait_for(root, ids, {"assigned", "rejected"})
        self.stop(allocator)
        # Allocation items queued: nothing runs.
        for _ in range(4):
            number += 1
            self.submit(root, rng, number, key=number % 2 == 0)
        if confirmed:
            self.cancel(root, confirmed[0])
        journal = os.listdir(os.path.join(root, "spool", "journal"))
        sealed = [n for n in journal if n.endswith(".log.z")]
        if len(sealed) < 2 or not any(n.endswith(".log") for n in journal):
            raise SystemExit(f"corruption: setup: expected 2 sealed segments and a live one, got {sorted(journal)}")
        if self.queue_depth(root) < 5:
            raise SystemExit("corruption: setup: expected queued items")
        with open(os.path.join(root, "manifest.json"), "w") as handle:
            json.dump({"manifest": self.manifest, "keyed": self.keyed}, handle)
        shutil.copytree(root, self.pristine, symlinks=True)

    # ---------------------------------------------------------------- mutation

    def targets(self, kind):
        spool = os.path.join(self.pristine, "spool")

        def files(path, predicate=lambda name: True):
            found = []
            for directory, _, names in os.walk(os.path.join(spool, path)):
                found += [os.path.join(directory, n) for n in sorted(names) if predicate(n)]
            return sorted(found)

        def nonempty(paths):
            return [p for p in paths if os.path.exists(p) and os.path.getsize(p) > 0]

        if kind == "item":
            return files("queues", lambda n: True)
        if kind == "journal-live":
            return files("journal", lambda n: n.endswith(".log"))
        if kind == "journal-sealed":
            return files("journal", lambda n: n.endswith(".log.z"))
        if kind == "index":
            return nonempty([os.path.join(spool, "index", n) for n in ("status.sqlite", "status.sqlite-wal")])
        if kind == "store":
            return nonempty([os.path.join(spool, "allocator", n) for n in ("state.sqlite", "state.sqlite-wal")])
        if kind == "idempotency":
            return files("intake/keys")
        if kind == "delivered":
            return files("notifier/delivered")
        if kind == "maildir":
            return files("maildir", lambda n: True)
        if kind == "state":
            return nonempty(files("state", lambda n: not n.endswith(".lock")))
        if kind == "config":
            return [os.path.join(self.pristine, "spool.conf")]
        if kind == "import":
            return [os.path.join(self.pristine, "units2.csv")]
        raise ValueError(kind)

    @staticmethod
    def mutate(path, rng):
        """Truncates `path` at a random offset, or flips 1..8 random bytes; returns a description."""
        data = bytearray(open(path, "rb").read())
        if not data or rng.random() < 0.35:
            offset = 0 if rng.random() < 0.15 else rng.randrange(0, max(1, len(data)))
            with open(path, "r+b") as handle:
                handle.truncate(offset)
            return f"truncate {len(data)}->{offset}"
        flips = []
        for _ in range(rng.randint(1, 8)):
            offset = rng.randrange(len(data))
            value = rng.randrange(1, 256)
            data[offset] ^= value
            flips.append(f"{offset}^{value:02x}")
        with open(path, "r+b") as handle:
            handle.write(data)
        return "flip " + ",".join(flips)

    # ---------------------------------------------------------------- one trial

    def corrupt_listing(self, root):
        path = os.path.join(root, "spool", "corrupt")
        return set(os.listdir(path)) if os.path.isdir(path) else set()

    def final_states(self, root):
        states = {}
        rc, out, err = self.ctl(root, "list", "--json")
        outputs = [(rc, out, err, "list")]
        if rc == 0:
            try:
                for row in json.loads(out):
                    states[row["id"]] = row["state"]
            except (ValueError, KeyError, TypeError):
                pass
        for request in self.manifest:
            if request not in states:
                rc, out, err = self.ctl(root, "status", request, "--json")
                outputs.append((rc, out, err, f"status {request}"))
                if rc == 0:
                    try:
                        states[request] = json.loads(out).get("state")
                    except ValueError:
                        pass
        return states, outputs

    def run_system(self, root, rng):
        """Runs the system on the spool at `root`; returns everything observed."""
        seen = {"commands": [], "daemons": []}
        sample = rng.sample(self.manifest, min(3, len(self.manifest)))
        for request in sample:
            seen["commands"].append(("status " + request, *self.ctl(root, "status", request, "--json")))
        seen["commands"].append(("list", *self.ctl(root, "list", "--json")))
        seen["commands"].append(("queues", *self.ctl(root, "queues")))
        seen["reconcile1"] = ("reconcile", *self.ctl(root, "reconcile", "--json"))
        seen["commands"].append(seen["reconcile1"])
        daemons = self.run_daemons(root, self.args.daemon_wait)
        seen["daemons"].append(daemons)
        for name, (rc, text, early) in daemons.items():
            if early and rc not in (0, None):
                # Started again once: the documented code once more, never a crash or another code.
                again = self.run_daemons(root, 3.0) if name == "spool-allocator" else None
                if again:
                    seen["daemons"].append(again)
        seen["reconcile2"] = ("reconcile --rebuild-index", *self.ctl(root, "reconcile", "--rebuild-index", "--json"))
        seen["commands"].append(seen["reconcile2"])
        if self.queue_depth(root) > 0:
            # What reconcile queued again (the timer runs it while the daemons run): processed.
            seen["daemons"].append(self.run_daemons(root, self.args.daemon_wait))
        seen["states"], outputs = self.final_states(root)
        seen["commands"] += [(what, rc, out, err) for rc, out, err, what in outputs]
        return seen

    def judge(self, kind, root, seen, before, description):
        """Returns (violations, detected, lost ids, changed ids)."""
        problems = []
        detected = False
        texts = []
        for what, rc, out, err in seen["commands"]:
            texts.append(out + err)
            if rc is None:
                problems.append(f"hang: spoolctl {what} outlived {self.timeout}s")
            elif rc < 0:
                problems.append(f"crash: spoolctl {what} killed by signal {-rc}")
            elif rc >= 128:
                problems.append(f"crash: spoolctl {what} exited {rc}")
            elif rc not in (0, 64, 65, 66, 73, 74, 75, 77):
                problems.append(f"undocumented exit {rc} from spoolctl {what}")
            if any(marker in err for marker in CRASH_MARKERS):
                problems.append(f"crash: spoolctl {what}: {err.strip()[-200:]}")
            if rc == 65 or re.search(r"damaged|corrupt/|unusable", err):
                detected = True
        store_refused = False
        for run in seen["daemons"]:
            for name, (rc, text, early) in run.items():
                texts.append(text)
                if any(marker in text for marker in CRASH_MARKERS):
                    problems.append(f"crash: {name}: {text.strip()[-200:]}")
                if rc is None:
                    problems.append(f"hang: {name} did not stop within 15 s of SIGTERM")
                elif rc < 0:
                    problems.append(f"crash: {name} killed by signal {-rc}")
                elif early and rc == 65 and name == "spool-allocator" and "is damaged" in text:
                    store_refused = True
                    detected = True
                elif early and rc != 0 and not (kind == "config" and rc in (64, 65, 78) and "spool.conf:" in text):
                    problems.append(f"loop: {name} exited {rc} by itself (systemd restarts it): {text.strip()[-200:]}")
                elif not early and rc != 0:
                    problems.append(f"{name} exited {rc} on SIGTERM")
                if re.search(r"status index unusable|quarantin|is damaged|journal damage|damaged segment|moved to corrupt|torn", text, re.I):
                    detected = True
        if store_refused and kind != "store":
            problems.append("allocator refused a store that was not damaged")
        all_text = "\n".join(texts)
        copies = self.corrupt_listing(root) - before
        if copies:
            detected = True
        states = seen["states"]
        changed, lost = [], []
        for request in self.manifest:
            expected = self.baseline.get(request)
            final = states.get(request)
            if final == expected:
                continue
            changed.append(request)
            if request in all_text and re.search(r"\b65\b|damaged|not restored|lost", all_text):
                lost.append(request)
            elif store_refused and final is not None:
                lost.append(request)  # waits in the queue until the store is repaired (documented)
            elif kind == "config" and self.config_refused(seen):
                lost.append(request)
            elif kind in UNPROMISED and (kind != "store" or description.startswith("flip")):
                pass
            else:
                problems.append(f"silent: request {request} was {expected} in the baseline, now {final}, and no report names it")
        if kind in COPY_PROMISED and (lost or any(rc == 65 for _, rc, _, _ in seen["commands"])) and not copies:
            problems.append("copy: damage reported but nothing new in corrupt/")
        problems += self.check_store(root) + self.check_maildir(root)
        return problems, detected, lost, changed

    @staticmethod
    def config_refused(seen):
        return any(rc in (64, 65, 78) and "spool.conf:" in err for _, rc, _, err in seen["commands"])

    def check_store(self, root):
        path = os.path.join(root, "spool", "allocator", "state.sqlite")
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            rows = db.execute("""SELECT a.unit_id, a.request_id, b.request_id FROM rental a JOIN rental b
                                 ON a.unit_id = b.unit_id AND a.request_id < b.request_id
                                 WHERE a.state = 'assigned' AND b.state = 'assigned'
                                   AND a.start_day < b.end_day AND b.start_day < a.end_day""").fetchall()
            db.close()
        except (sqlite3.Error, UnicodeDecodeError, ValueError):
            return []  # a damaged store: the allocator refuses it (judged above)
        return [f"overlap: unit {u} held by {a} and {b}" for u, a, b in rows]

    def check_maildir(self, root):
        base = os.path.join(root, "spool", "maildir")
        problems = []
        if not os.path.isdir(base):
            return problems
        for customer in sorted(os.listdir(base)):
            seen = {}
            for sub in ("new", "cur"):
                directory = os.path.join(base, customer, sub)
                if not os.path.isdir(directory):
                    continue
                for name in os.listdir(directory):
                    outcome = name.split(":")[0]
                    if outcome in seen:
                        problems.append(f"duplicate: {customer} has {outcome} twice")
                    seen[outcome] = True
        return problems

    def trial(self, kind, number, rng, root):
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(self.pristine, root, symlinks=True)
        targets = self.targets(kind)
        if not targets:
            return None
        target = rng.choice(targets).replace(self.pristine, root, 1)
        description = self.mutate(target, rng)
        label = f"{kind} #{number} {os.path.relpath(target, root)} {description}"
        before = self.corrupt_listing(root)
        if kind == "import":
            return label, self.trial_import(root, target)
        resubmit = []
        if kind == "idempotency":
            resubmit = self.resubmit(root, os.path.basename(target))
        if kind == "state":
            # The breaker and the allocator's health are read by a submit (far from the others).
            resubmit = [("submit (probe)", *self.ctl(root, "submit", "--customer", "probe@example.com", "--contact",
                                                    "probe@example.com", "--size", "S", "--from", "2031-01-01",
                                                    "--months", "1", "--json"))]
        seen = self.run_system(root, rng)
        seen["commands"] += resubmit
        if kind == "config" and self.config_refused(seen):
            # Refused with the file and line: after the operator repairs it, nothing may be lost.
            problems = self.judge(kind, root, seen, before, description)[0]
            problems = [p for p in problems if not p.startswith("silent:")]
            shutil.copyfile(os.path.join(self.pristine, "spool.conf"), target)
            seen = self.run_system(root, rng)
            again = self.judge("config-repaired", root, seen, before, description)
            return label + " (refused; repaired)", (problems + again[0], True, again[2], again[3])
        result = self.judge(kind, root, seen, before, description)
        if kind == "idempotency":
            result[0].extend(self.judge_resubmit(os.path.basename(target), resubmit))
        store_refused = any(run.get("spool-allocator", (0, "", False))[0] == 65 for run in seen["daemons"])
        if number <= self.args.invariant_trials and not store_refused and not result[0]:
            # The shared invariants, the requests the damage destroyed (named) excluded.
            skip = ["maildir"] if kind == "maildir" else []
            if kind in UNPROMISED:
                skip.append("acked")
            excluded = set(result[2]) | (set(result[3]) if kind in UNPROMISED else set())
            journal = kind.startswith("journal")
            result[0].extend(f"shared {line}" for line in
                             self.invariants(root, exclude=excluded, skip=skip, allow_rebuild_65=journal))
        return label, result

    def resubmit(self, root, record):
        """Submits again the request whose key record `record` (`<uid>-<key>`) was damaged."""
        key = record.split("-", 1)[1] if "-" in record else record
        if key not in self.keyed:
            return []
        return [("submit again --idempotency-key " + key, *self.ctl(root, *self.keyed[key]["arguments"]))]

    def judge_resubmit(self, record, resubmit):
        """The same key and data again: the first id, or a refusal (65); never a second request."""
        problems = []
        for what, rc, out, err in resubmit:
            key = record.split("-", 1)[1]
            if rc == 0:
                try:
                    answer = json.loads(out)
                except ValueError:
                    problems.append(f"{what}: unreadable output {out[:100]!r}")
                    continue
                if answer.get("id") != self.keyed[key]["id"]:
                    problems.append(f"duplicate: {what} created a second request {answer.get('id')} "
                                    f"instead of {self.keyed[key]['id']}")
            elif rc != 65:
                problems.append(f"{what}: exit {rc}: {err.strip()[:200]}")
        return problems

    def trial_import(self, root, path):
        """The mutated import file: all or nothing, no crash."""
        rc0, before, _ = self.ctl(root, "units", "list", "--json")
        rc, out, err = self.ctl(root, "units", "import", os.path.basename(path))
        rc1, after, _ = self.ctl(root, "units", "list", "--json")
        problems = []
        if rc is None:
            problems.append("hang: units import")
        elif rc < 0 or any(m in err for m in CRASH_MARKERS):
            problems.append(f"crash: units import: {rc} {err.strip()[-200:]}")
        elif rc not in (0, 65, 64, 74):
            problems.append(f"undocumented exit {rc} from units import")
        if rc not in (0, None) and before != after:
            problems.append("import refused but the inventory changed")
        if rc == 0 and before == after:
            problems.append("import succeeded but added nothing")
        return problems, rc not in (0, None), [], []

    # ---------------------------------------------------------------- main

    def run(self):
        started = time.monotonic()
        print(f"corruption: seed={self.args.seed} per-kind={self.args.per_kind} kinds={','.join(self.args.kinds)}", flush=True)
        self.build()
        print(f"corruption: pristine spool with {len(self.manifest)} acknowledged requests "
              f"({self.queue_depth(self.pristine)} queue items) in {time.monotonic() - started:.1f}s", flush=True)
        # Baseline: the unmutated spool through the same steps.
        shutil.rmtree(self.trial_root, ignore_errors=True)
        shutil.copytree(self.pristine, self.trial_root, symlinks=True)
        seen = self.run_system(self.trial_root, random.Random(0))
        self.baseline = seen["states"]
        for request in self.manifest:
            if self.baseline.get(request) not in TERMINAL:
                raise SystemExit(f"corruption: baseline: {request} is {self.baseline.get(request)}, not terminal")
        if seen["reconcile2"][1] != 0 or seen["reconcile1"][1] != 0:
            raise SystemExit(f"corruption: baseline: reconcile exited {seen['reconcile1'][1]}/{seen['reconcile2'][1]}")
        broken = self.invariants(self.trial_root)
        if broken:
            raise SystemExit("corruption: baseline: shared invariants violated:\n" + "\n".join(broken))
        print(f"corruption: baseline ok: {len(self.manifest)} requests terminal, reconcile 0, shared invariants hold", flush=True)
        rng = random.Random(self.args.seed)
        plan = [(kind, number, rng.getrandbits(64)) for kind in self.args.kinds
                for number in range(1, self.args.per_kind + 1)]
        roots = queue.Queue()
        for job in range(self.args.jobs):
            roots.put(os.path.join(self.work, f"trial-{job}"))

        def one(step):
            kind, number, seed = step
            root = roots.get()
            try:
                clock = time.monotonic()
                try:
                    result = self.trial(kind, number, random.Random(seed), root)
                except Exception as error:  # a harness failure is reported, never hidden
                    import traceback
                    result = (f"{kind} #{number}", ([f"harness error: {error!r} {traceback.format_exc()[-600:]}"], False, [], []))
                kept = None
                if result and result[1][0] and self.args.keep_failures:
                    kept = os.path.join(self.work, f"failed-{kind}-{number}")
                    shutil.rmtree(kept, ignore_errors=True)
                    shutil.copytree(root, kept, symlinks=True)
                return step, result, time.monotonic() - clock
            finally:
                roots.put(root)

        pool = concurrent.futures.ThreadPoolExecutor(self.args.jobs)
        outcomes = pool.map(one, plan)  # in order, as they finish
        done = 0
        for (kind, number, _), result, took in outcomes:
            done += 1
            if done % 25 == 0:
                print(f"corruption: progress {done}/{len(plan)} trials, {time.monotonic() - started:.0f}s", flush=True)
            stats = self.stats[kind]
            if True:
                if result is None:
                    continue
                label, (problems, detected, lost, changed) = result
                stats["mutations"] += 1
                stats["detected"] += bool(detected)
                stats["lost"] += len(lost)
                if not problems and not (set(changed) - set(lost)):
                    stats["recovered"] += 1
                if not detected and not changed:
                    stats["undetected"] += 1
                if problems:
                    stats["violations"] += len(problems)
                    for problem in problems:
                        self.violations.append(f"{label}: {problem}")
                        print(f"corruption: VIOLATION {label}: {problem}", flush=True)
                elif self.args.verbose:
                    print(f"corruption: ok {label}: detected={detected} lost={len(lost)} changed={len(changed)} {took:.1f}s", flush=True)
        pool.shutdown()
        for kind, stats in self.stats.items():
            print(f"corruption: {kind}: " + " ".join(f"{k}={v}" for k, v in stats.items()), flush=True)
        total = sum(s["mutations"] for s in self.stats.values())
        figures = " ".join(f"{kind}={s['mutations']}/{s['detected']}/{s['recovered']}/{s['lost']}/{s['violations']}"
                           for kind, s in self.stats.items())
        print(f"corruption: per kind mutations/detected/recovered/reported-lost-requests/violations; "
              f"{time.monotonic() - started:.0f}s", flush=True)
        print(f"RESULT corruption violations={len(self.violations)} mutations={total} seed={self.args.seed} {figures}", flush=True)
        return 0 if not self.violations else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["quick", "full"], default="quick")
    parser.add_argument("--per-kind", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--bin", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds any spoolctl command may take")
    parser.add_argument("--daemon-wait", type=float, help="seconds the daemons get to drain the queues")
    parser.add_argument("--invariant-trials", type=int, default=1,
                        help="the first N trials of each kind also run lib/invariants.py check")
    parser.add_argument("--jobs", type=int, default=2, help="trials run at once")
    parser.add_argument("--keep-failures", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    args.per_kind = args.per_kind or (1 if args.mode == "quick" else 100)
    args.seed = args.seed if args.seed is not None else (8 if args.mode == "quick" else int(time.time()))
    args.daemon_wait = args.daemon_wait or 8.0
    args.kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(args.kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds {sorted(unknown)}; known: {','.join(KINDS)}")
    sys.exit(Campaign(args).run())


if __name__ == "__main__":
    main()
