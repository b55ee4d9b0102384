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

The modules of this directory:

  campaign.py    the entry point (arguments, the baseline, the trials in parallel)
  promises.py    the kinds of file and what the documentation promises about them
  processes.py   running spoolctl and the daemons
  populate.py    building the pristine spool
  mutations.py   the files of each kind and the damage done to one
  system.py      one trial: the system run on a damaged copy
  judge.py       the verdicts against the baseline, and the shared invariant checker
  report.py      the figures and the RESULT line

Stdlib only. Prints progress lines and one `RESULT corruption …` line; exit 0 iff no violation.
"""
import argparse
import concurrent.futures
import os
import queue
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from judge import Judge                  # noqa: E402
from mutations import Mutations          # noqa: E402
from populate import Populate            # noqa: E402
from processes import Processes          # noqa: E402
from promises import KINDS, TERMINAL     # noqa: E402
from report import Report                # noqa: E402
from system import System                # noqa: E402


class Campaign(Processes, Populate, Mutations, System, Judge, Report):
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
            self.tally(kind, result, took)
        pool.shutdown()
        return self.report(started)



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
