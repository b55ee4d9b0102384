"""One attempt: run something as a user, then check what the campaign promises.

Checks after every attempt (each failure is a violation, printed on one line):
- leak: the output names nothing of the victim's (ids, customer, contact, idempotency key,
  login, dates; unit ids outside the public inventory listing);
- oracle: the answer for the victim's id (or a value derived from it) equals, but for that
  value, the answer for an id of the same shape that names nothing (its twin);
- exit: the exit code is one the documentation lists (no signal death, no hang), and the one
  expected when the attack has one (77 for operator commands and foreign files or roots);
- changed: the spool is unchanged byte for byte (but for a submit of the attacker's own);
- outside: nothing appeared or changed in the attacker's home, cwd or TMPDIR but what they
  planted, and the spool group's file outside the spool is untouched.
"""
import os
import re
import resource
import subprocess
import time

from setup import EXIT_CODES, differences, snapshot


class Attempt:
    def __init__(self, kind, user, argv, env=None, cwd=None, twin=None, expect=None, submits=False,
                 units_allowed=False, rlimits=None, close=(), redirect=None, stdin=None, timeout=30, pass_fds=(), expect_failure=False):
        self.kind, self.user, self.argv, self.env, self.cwd = kind, user, argv, env or {}, cwd
        self.twin = twin                  # (argv, env, [(victim value, twin value)]) or None
        self.expect = expect              # a set of exit codes, or None for "any documented one"
        self.submits = submits            # may add the attacker's own request to the queue
        self.units_allowed = units_allowed
        self.rlimits = rlimits or {}
        self.close = close
        self.redirect = redirect or {}   # descriptor -> path, opened by the attacker before exec
        self.stdin = stdin
        self.timeout = timeout
        self.pass_fds = pass_fds
        self.expect_failure = expect_failure   # not spoolctl: must fail (the kernel refuses)


class Runner:
    def __init__(self, install, victim, log):
        self.install, self.victim, self.log = install, victim, log
        self.attempts = 0
        self.acked = []                   # ids of acknowledged submits (printed, exit 0)
        self.twins = {}                   # answers to twins (ids that name nothing), asked once
        self.delayed_reconciles = 0       # reconciles delayed by a stopped reader (documented)
        self.kinds = set()
        self.violations = []
        self.baseline = snapshot(install.spool)
        self.sentinels = [os.path.join(install.base, "home"), install.group_file]

    def outside(self):
        entries = {}
        for sentinel in self.sentinels:
            if os.path.isfile(sentinel):
                entries[sentinel] = snapshot_file(sentinel)
                continue
            for path, value in snapshot(sentinel).items():
                entries[os.path.join(sentinel, path)] = value
        return entries

    def run(self, attempt, argv=None, env=None):
        install = self.install
        argv = [install.spoolctl] + (attempt.argv if argv is None else argv)
        if argv[1:2] and argv[1].startswith("/"):   # a command that is not spoolctl (setpriv, a daemon)
            argv = argv[1:]
        environment = dict(attempt.env if env is None else env)

        def prepare():
            for limit, value in attempt.rlimits.items():
                resource.setrlimit(limit, value)
            for fd, path in attempt.redirect.items():
                opened = os.open(path, os.O_WRONLY)
                os.dup2(opened, fd)
                os.close(opened)
            for fd in attempt.close:
                os.close(fd)

        started = time.monotonic()
        try:
            result = install.as_user(attempt.user, argv, env=environment, timeout=attempt.timeout, cwd=attempt.cwd,
                                     preexec_fn=prepare if (attempt.rlimits or attempt.close or attempt.redirect) else None,
                                     pass_fds=attempt.pass_fds,
                                     **({"stdin": attempt.stdin} if attempt.stdin is not None else {}))
            outcome = (result.returncode, result.stdout, result.stderr)
        except subprocess.TimeoutExpired as timeout:
            outcome = ("timeout", _text(timeout.stdout), _text(timeout.stderr))
        self.attempts += 1
        if self.attempts % 500 == 0:
            self.log(f"{self.attempts} attempts, {len(self.violations)} violations")
        if outcome[0] == 0 and len(argv) > 1 and argv[1] == "submit":
            self.acked += re.findall(r"\b0[0-9a-z]{25}(?:-[0-9]{5})?\b", outcome[1])
        return outcome, time.monotonic() - started

    def attack(self, attempt):
        self.kinds.add(attempt.kind)
        before_outside = self.outside()
        (code, out, err), _ = self.run(attempt)
        label = f"{attempt.kind} as {attempt.user}: {' '.join(attempt.argv)[:160]!r} env={sorted(attempt.env)}"
        # What the attacker typed may come back (an error naming the id they gave): not a leak.
        typed = " ".join(attempt.argv + list(attempt.env.values()))
        leaked = [s for s in self.victim.leaks(out + err, units_allowed=attempt.units_allowed) if s not in typed]
        if leaked:
            self.violation("leak", label, f"output names {leaked}: {(out + err)[:300]!r}")
        if attempt.expect_failure:
            if code == 0:
                self.violation("direct", label, f"succeeded: {out[:200]!r}")
        elif code == "timeout" or code not in EXIT_CODES or (code == 78 and attempt.argv[:2] != ["config", "check"]):
            self.violation("exit", label, f"exit {code} (not a documented code): {err[-300:]!r}")
        elif attempt.expect is not None and code not in attempt.expect:
            self.violation("exit", label, f"exit {code}, expected {sorted(attempt.expect)}: {err[-300:]!r}")
        if attempt.twin:
            twin_argv, twin_env, pairs = attempt.twin
            key = (attempt.user, tuple(twin_argv), tuple(sorted(twin_env.items())))
            if key not in self.twins:
                self.twins[key] = self.run(attempt, twin_argv, twin_env)[0]
            twin_code, twin_out, twin_err = self.twins[key]
            # The value as typed, and any id-like text with the victim's time part (an echo
            # escaped or cut short): the twin shares the time part, not the random one.
            prefixes = [i[:10] for i in self.victim.ids]
            mine = normalized((code, out, err), [(victim, "VALUE") for victim, _ in pairs], prefixes)
            theirs = normalized((twin_code, twin_out, twin_err), [(twin, "VALUE") for _, twin in pairs], prefixes)
            if mine != theirs:
                self.violation("oracle", label, f"the victim's {pairs[0][0][:40]!r} answers {mine!r}, "
                               f"a missing one {theirs!r}")
        after = snapshot(self.install.spool)
        changed = differences(self.baseline, after)
        if changed:
            self.twins.clear()   # a cached answer (a list) may be stale now
        if attempt.submits:
            changed = [c for c in changed if not allowed_by_submit(c)]
        if changed:
            self.violation("changed", label, f"the spool changed: {changed[:5]}")
        self.baseline = after
        moved = [c for c in differences(before_outside, self.outside())]
        if moved:
            self.violation("outside", label, f"written outside the spool: {moved[:5]}")
        return code, out, err

    def violation(self, kind, label, detail):
        line = f"VIOLATION {kind}: {label}: {detail}"
        self.violations.append(line)
        self.log(line)


def allowed_by_submit(change):
    """What a submit of the attacker's own may add: its queue item (and its bucket directory),
    its idempotency record, the admission breaker's record, and staging directories."""
    kind, path = change.split(" ", 1)
    if kind == "removed":
        return path.startswith("tmp/")
    return path.startswith(("queues/allocation/ready", "intake/keys", "state/", "tmp/"))


# Printed by the Swift runtime before main when SWIFT_BACKTRACE asks for backtraces in a
# setgid process (which it refuses): the caller's own variable echoed, nothing of the spool's.
RUNTIME_NOTICE = "swift runtime: backtrace-on-crash is not supported for privileged executables.\n"


def normalized(outcome, replacements, prefixes=()):
    code, out, err = outcome
    err = err.replace(RUNTIME_NOTICE, "")
    for old, new in replacements:
        out, err = out.replace(old, new), err.replace(old, new)
    for prefix in prefixes:
        for variant in (prefix, prefix.upper()):
            pattern = re.escape(variant) + "[0-9A-Za-z]*"
            out, err = re.sub(pattern, "ID", out), re.sub(pattern, "ID", err)
    return (code, out, err)


def snapshot_file(path):
    with open(path, "rb") as handle:
        return handle.read()


def _text(value):
    if value is None:
        return ""
    return value if isinstance(value, str) else value.decode(errors="replace")
