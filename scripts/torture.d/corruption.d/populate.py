"""The populated spool every trial starts from, built with the real binaries: units imported,
requests submitted (half with idempotency keys), decided and cancelled over three phases whose
live journal segment is aged so that the next append seals it, then notification and allocation
items left queued; the result is copied to WORK/pristine with its manifest."""
import json
import os
import random
import re
import shutil
import time

from promises import TERMINAL


class Populate:
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
