"""One trial: a copy of the pristine spool, one file damaged, then the system run on the copy
(`spoolctl status`/`list`/`queues`, `reconcile`, both daemons until the queues drain, `reconcile
--rebuild-index`, the final states), with the extra steps of some kinds (a resubmit of a damaged
idempotency key, a probe submit for the state files, the repaired configuration, the import)."""
import json
import os
import shutil

from promises import CRASH_MARKERS, UNPROMISED


class System:
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
