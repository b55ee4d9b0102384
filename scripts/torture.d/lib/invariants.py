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
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from invariants_index import Index            # noqa: E402
from invariants_maildir import Maildir        # noqa: E402
from invariants_outside import Outside        # noqa: E402
from invariants_requests import Requests      # noqa: E402
from invariants_spool import Spool            # noqa: E402
from invariants_store import Store            # noqa: E402

CHECKS = ["problems", "acked", "queues", "overlap", "maildir", "index", "outside"]


# The modules: invariants_spool.py (the spool, spoolctl, the copy), invariants_requests.py
# (problems, acked, queues; pending, stats), invariants_store.py (overlap), invariants_maildir.py
# (maildir), invariants_index.py (index), invariants_outside.py (outside; snapshot).
class Checker(Spool, Requests, Store, Maildir, Index, Outside):
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
