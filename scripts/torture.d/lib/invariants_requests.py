"""The checks of the requests and the queues (`problems`, `acked`, `queues`), the `pending`
subcommand (settled yet?) and the `stats` subcommand (the figures of a RESULT line)."""
import os
import random
import sqlite3

from invariants_spool import settled


class Requests:
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
