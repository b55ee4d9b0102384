#!/usr/bin/env python3
"""The hostile-users campaign (issue 8, item 5): spoolctl installed setgid, a victim (alice)
with requests in every state, an attacker (mallory) and a bystander (eve), neither in the
operator group, who try every command and option (read from --help), configuration files, spool
roots and environments of their choosing, guessed ids, daemon programs, planted symlinks, FIFOs
and hard links, closed and redirected descriptors, tiny limits, and stopping or blocking their
own spoolctl mid-command. See runner.py for what is checked after every attempt.

Usage (as root): campaign.py --mode quick|full --bin DIR --work DIR [--seed N] [--stops N]
Prints progress lines and `RESULT hostile violations=N users=U attacks=K attempts=A seed=S`;
exit 0 iff no violation. Runs itself inside a private mount namespace (unshare --mount).
"""
import argparse
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from attacks import Families                       # noqa: E402
from environment_ids import descriptors, environments, guessed_ids  # noqa: E402
from runner import Runner                          # noqa: E402
from setup import Installation, ensure_accounts   # noqa: E402
from stopped import daemons_and_direct, stopped    # noqa: E402
from victim import Victim                          # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["quick", "full"], default="quick")
    parser.add_argument("--bin", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--stops", type=int, default=None, help="stopped/blocked attacker processes (quick 4, full 60)")
    parser.add_argument("--accounts-only", action="store_true", help="create the users and groups, nothing else")
    arguments = parser.parse_args()
    if arguments.accounts_only:
        ensure_accounts()
        os.makedirs("/etc/self-storage", exist_ok=True)
        return
    if os.environ.get("HOSTILE_NAMESPACE") != "1":
        os.environ["HOSTILE_NAMESPACE"] = "1"
        command = ["unshare", "--mount", "--propagation", "private", "--", sys.executable, os.path.abspath(__file__)] + sys.argv[1:]
        sys.exit(subprocess.call(command))
    if os.geteuid() != 0:
        print("RESULT hostile violations=1 users=0 attacks=0 attempts=0 (needs root: users and a setgid binary)")
        sys.exit(1)
    full = arguments.mode == "full"
    seed = arguments.seed if arguments.seed is not None else (int(time.time()) if full else 8)
    rng = random.Random(seed)
    started = time.monotonic()

    def log(line):
        print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True)

    log(f"hostile: mode={arguments.mode} seed={seed} (rerun with --seed {seed})")
    install = Installation(os.path.join(arguments.work, "install"), arguments.bin)
    install.enter_namespace_mount()
    victim = Victim(install)
    log(f"victim's requests: {victim.states}")
    families = Families(install, victim, rng, full)
    runner = Runner(install, victim, log)
    tables = [("commands", families.commands), ("configurations", families.configurations),
              ("spool roots", families.spool_roots), ("environments", lambda: environments(families)),
              ("guessed ids", lambda: guessed_ids(families)), ("descriptors and limits", lambda: descriptors(families)),
              ("daemons and direct access", lambda: daemons_and_direct(families)), ("batches", families.batches)]
    for name, table in tables:
        before, violations = runner.attempts, len(runner.violations)
        for attempt in table():
            runner.attack(attempt)
        log(f"{name}: {runner.attempts - before} attempts, {len(runner.violations) - violations} violations")
    timing(runner, families, 40 if full else 8, log)
    before, violations = runner.attempts, len(runner.violations)
    stopped(runner, families, arguments.stops if arguments.stops is not None else (60 if full else 4))
    log(f"stopped and blocked: {runner.attempts - before} attempts, {len(runner.violations) - violations} violations")
    markers = [name for name in os.listdir(families.home) if name.startswith("MARKER")]
    if markers:
        runner.violation("outside", "planted code", f"the attacker's library, module or tool ran: {markers}")
    write_records(install, victim, runner)
    users = 4   # the victim, the attacker, the bystander, the daemon user whose reconcile must not wait
    print(f"FIGURES violations={len(runner.violations)} users={users} attacks={len(runner.kinds)} "
          f"attempts={runner.attempts} delayed_reconciles={runner.delayed_reconciles} seed={seed} "
          f"seconds={int(time.monotonic() - started)}", flush=True)
    sys.exit(0 if not runner.violations else 1)


def timing(runner, families, count, log):
    """Reported, not judged: the median time of `status` for the victim's request (in the
    index) and for an id that names nothing (looked up in the index, the queue, the journal)."""
    from runner import Attempt
    victim, rng = families.victim, families.rng
    medians = []
    for name, make in [("victim's", lambda: victim.ids[1]), ("missing", lambda: families_fake(rng, victim.ids[1]))]:
        times = sorted(runner.run(Attempt("timing", "spool-mallory", ["status", make()]))[1] for _ in range(count))
        medians.append(f"{name} {times[len(times) // 2] * 1000:.0f} ms")
    runner.kinds.add("timing")
    log(f"timing of status (median of {count}, not judged): " + ", ".join(medians))


def families_fake(rng, like):
    from victim import fake_id
    return fake_id(rng, like)


def write_records(install, victim, runner):
    """The harness's records for settle and check_invariants (scripts/torture.d/lib): the
    installation directory as a base (spool.conf, spool/), every acknowledged submit, the
    victim's acknowledged cancels, and problems (none: violations are counted here)."""
    with open(os.path.join(install.base, "spool.conf"), "w") as handle:
        handle.write(open(os.path.join(install.etc, "spool.conf")).read())
    with open(os.path.join(install.base, "acked"), "w") as handle:
        handle.writelines(f"{i}\n" for i in sorted(set(victim.ids + list(victim.own.values()) + runner.acked)))
    with open(os.path.join(install.base, "cancels"), "w") as handle:
        handle.writelines(f"{i}\n" for i in victim.cancelled)
    open(os.path.join(install.base, "problems"), "w").close()
    os.makedirs(os.path.join(install.base, "logs"), exist_ok=True)
    os.makedirs(os.path.join(install.base, "pids"), exist_ok=True)


if __name__ == "__main__":
    main()
