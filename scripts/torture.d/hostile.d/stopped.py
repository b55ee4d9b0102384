"""Attack tables, continued: the attacker's process stopped (SIGSTOP) or blocked on a full pipe
mid-command, then killed; the daemons' programs run with the spool group's rights; the spool's
files read directly. A stopped or blocked spoolctl must hold up nobody: the victim's submit and
status, root's reconcile and an inventory change each finish within BOUND seconds."""
import fcntl
import os
import re
import signal
import subprocess
import time

from runner import Attempt
from setup import ATTACKER, CLEAN_PATH, DAEMON, SPOOL_GROUP, VICTIM

BOUND = 15
# Documented (docs/reliability.md, "The setgid trust boundary", not promised): a reader stopped
# inside its read transaction keeps reconcile's wal_checkpoint(TRUNCATE) waiting for its busy
# timeout (30 s), after which reconcile reports the failure (74 or 75); everything else it does
# is done by then. So reconcile gets 30 s more and those codes; the others get BOUND and exit 0.
RECONCILE_BOUND, RECONCILE_CODES = BOUND + 30, {0, 74, 75}


def others(install, victim, sequence):
    """What the others do while the attacker's process is stopped: (label, argv, user)."""
    return [("victim submit", [install.spoolctl, "submit", "--customer", victim.customer, "--contact", victim.contact,
                               "--size", "S", "--from", "2099-05-0%d" % (1 + sequence % 9), "--months", "1"], VICTIM),
            ("victim status", [install.spoolctl, "status", victim.ids[1]], VICTIM),
            ("daemon reconcile", [install.spoolctl, "reconcile"], DAEMON),
            ("root units add", [install.spoolctl, "units", "add", f"S-{sequence}", "--size", "M"], "root")]


def acceptable(what, code, elapsed):
    """Whether `what` finished as promised while the attacker's spoolctl was stopped; and
    whether it was the documented delay of reconcile's checkpoint."""
    if what == "daemon reconcile":
        return code in RECONCILE_CODES, code != 0 or elapsed > BOUND
    return code == 0, False


def stopped(runner, families, stops):
    install, victim, rng, home = runner.install, runner.victim, families.rng, families.home
    commands = [["submit", "--customer", "m@example.net", "--contact", "m@example.net", "--size", "S", "--from", "2098-08-01",
                 "--months", "1", "--idempotency-key", "k"],
                ["cancel", victim.own[ATTACKER]], ["status", victim.ids[1]], ["list", "--json"], ["units", "list"], ["queues"],
                ["status", "--customer", victim.customer], ["submit", "--customer", "m@example.net", "--contact", "m@example.net",
                                                             "--size", "S", "--from", "2098-09-01", "--months", "1", "--wait", "5"]]
    before = {i: victim_state(install, i) for i in victim.ids}
    user = install.users[ATTACKER]
    for sequence in range(stops):
        command = commands[sequence % len(commands)]
        blocked = sequence % 3 == 2      # every third: not stopped, but blocked writing to a full pipe
        kind = "blocked-output" if blocked else "stopped"
        runner.kinds.add(f"{kind}:{command[0]}")
        read_end, write_end = os.pipe()
        if blocked:
            fcntl.fcntl(write_end, fcntl.F_SETFL, os.O_NONBLOCK)
            try:
                while True:
                    os.write(write_end, b"x" * 65536)
            except BlockingIOError:
                pass
            fcntl.fcntl(write_end, fcntl.F_SETFL, 0)
        process = subprocess.Popen([install.spoolctl] + command, stdout=write_end, stderr=write_end if blocked else subprocess.DEVNULL,
                                   env={"PATH": CLEAN_PATH, "HOME": home}, cwd=home, user=user.uid, group=user.gid,
                                   extra_groups=user.groups)
        os.close(write_end)
        time.sleep(rng.choice([0, 0.005, 0.01, 0.02, 0.04, 0.06, 0.1, 0.2]))
        if not blocked:
            process.send_signal(signal.SIGSTOP)
        else:
            time.sleep(0.2)
        label = f"{kind} {' '.join(command)[:60]} #{sequence}"
        for what, argv, who in others(install, victim, sequence):
            started = time.monotonic()
            bound = RECONCILE_BOUND if what == "daemon reconcile" else BOUND
            try:
                if who == "root":
                    result = install.as_root(argv[1:], timeout=bound)
                else:
                    result = install.as_user(who, argv, timeout=bound)
                code = result.returncode
                if code == 0 and argv[1] == "submit":
                    runner.acked += re.findall(r"\b0[0-9a-z]{25}(?:-[0-9]{5})?\b", result.stdout)
            except subprocess.TimeoutExpired:
                code = "timeout"
            runner.attempts += 1
            elapsed = time.monotonic() - started
            ok, delayed = acceptable(what, code, elapsed)
            if not ok:
                runner.violation("held", label, f"{what} while the attacker's spoolctl is {kind}: exit {code} after {elapsed:.1f} s")
            elif delayed:
                runner.delayed_reconciles += 1
                runner.log(f"{label}: reconcile exit {code} after {elapsed:.1f} s (documented: a stopped reader delays its checkpoint)")
        process.send_signal(signal.SIGKILL if sequence % 2 == 0 else signal.SIGCONT)
        os.close(read_end)   # a blocked writer gets EPIPE now
        try:
            process.wait(timeout=BOUND)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            runner.violation("held", label, "the attacker's spoolctl did not end after SIGCONT and a closed pipe")
    after = {i: victim_state(install, i) for i in victim.ids}
    for identifier in victim.ids:
        if before[identifier] != after[identifier]:
            runner.violation("changed", "stopped", f"the victim's request {identifier} changed: {before[identifier]} -> {after[identifier]}")
    reconcile = install.as_root(["reconcile"])
    runner.attempts += 1
    if reconcile.returncode != 0:
        runner.violation("changed", "stopped", f"reconcile after the stopped attacks: exit {reconcile.returncode} {reconcile.stderr.strip()[-300:]}")


def victim_state(install, identifier):
    status = install.status(identifier) or {}
    return {key: status.get(key) for key in ("state", "customer", "contact", "unit", "from", "to", "cancel_requested_at")}


def daemons_and_direct(families):
    """The daemons' programs started with the spool group's rights by the attacker (a setgid
    wrapper): exit 77. The spool's files read, listed or written directly: refused by the kernel."""
    install = families.install
    for daemon in ["spool-allocator", "spool-notifier"]:
        for extra in [["--spool", install.spool], []]:
            argv = ["/usr/bin/setpriv", "--reuid", ATTACKER, "--rgid", ATTACKER, "--init-groups", "--egid", SPOOL_GROUP,
                    "/usr/bin/timeout", "20", f"{install.bin}/{daemon}"] + extra
            yield Attempt(f"daemon:{daemon}", "root", argv, expect={77}, timeout=30, env={"SPOOL_CONFIG": install.config})
    spool = install.spool
    for argv in [["/bin/ls", spool], ["/bin/cat", f"{spool}/format"], ["/bin/ls", f"{spool}/journal"],
                 ["/usr/bin/touch", f"{spool}/planted"], ["/bin/ln", "-s", "/tmp", f"{spool}/tmp/planted"],
                 ["/bin/ln", install.spoolctl, f"{families.home}/spoolctl-copy"]]:
        yield Attempt("direct:" + os.path.basename(argv[0]), ATTACKER, argv, expect_failure=True)
