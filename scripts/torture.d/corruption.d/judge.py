"""Judging a trial against the baseline and the documented promises (crash, hang, loop, silent,
copy, overlap, duplicate; see campaign.py), and the shared invariant checker (lib/invariants.py)
run on a trial's spool."""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys

from promises import COPY_PROMISED, CRASH_MARKERS, UNPROMISED


class Judge:
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
