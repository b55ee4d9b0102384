"""Attack tables, continued: the environment of the attacker's choosing, guessed request ids and
customers, descriptors and resource limits."""
import os
import resource

from attacks import ATTACKERS
from runner import Attempt
from setup import ATTACKER
from victim import fake_id, neighbours


def environments(families):
    """Hostile variables, alone, against reads and a submit: the answer must be the one a clean
    environment gets (the twin), and the planted library, module, tools and temp links unused."""
    home, planted, victim = families.home, families.planted, families.victim
    hostile = [
        {"LD_PRELOAD": planted["library"] or f"{home}/marker.so"}, {"LD_LIBRARY_PATH": home},
        {"LD_AUDIT": planted["library"] or f"{home}/marker.so"}, {"GCONV_PATH": f"{home}/gconv", "LANG": "C.MARKER"},
        {"LOCPATH": home, "LC_ALL": "xx_XX.UTF-8"}, {"LANG": "../../../../tmp/x"}, {"LC_ALL": f"{home}/fifo"},
        {"TZDIR": home, "TZ": "fifo"}, {"TZ": f"{planted['fifo']}"}, {"TZ": f":{install_spool(families)}/format"},
        {"TZ": "../../../../" + planted["fifo"].lstrip("/")},
        {"SWIFT_BACKTRACE": "enable=yes,interactive=yes,output-to=/tmp"}, {"HOME": f"{home}/tmp"},
        {"TMPDIR": f"{home}/tmp"}, {"SQLITE_TMPDIR": f"{home}/tmp"}, {"PATH": f"{home}/bin"}, {"IFS": "/"},
        {"SPOOL_LOG_LEVEL": "trace"}, {"NOTIFY_SOCKET": f"{home}/notify"}, {"MALLOC_CHECK_": "3", "MALLOC_PERTURB_": "85"},
        {"TERM": "../../../../" + planted["fifo"].lstrip("/")}, {"LANGUAGE": "../../x"}, {"NLSPATH": f"{home}/%N"},
        {"SQLITE_HISTORY": f"{home}/hist"}, {"XDG_RUNTIME_DIR": home}, {"SPOOL_CONFIG": ""}, {"SPOOL_ROOT": ""},
    ]
    targets = [["list"], ["list", "--json"], ["status", victim.ids[1]], ["status", victim.ids[3], "--json"],
               ["status", victim.own[ATTACKER]], ["queues"], ["units", "list"],
               ["submit", "--customer", "m@example.net", "--contact", "m@example.net", "--size", "S", "--from", "2098-06-01", "--months", "1"]]
    if not families.full:
        targets = [targets[2]]
    # The twin runs with a clean environment (and the victim's id swapped for nothing), once.
    twins = {}
    for target in targets:
        twin = families.twin(target) or (list(target), {}, [("@@none@@", "@@none@@")])
        twins[tuple(target)] = (twin[0], {}, twin[2])
    for env in hostile:
        for target in targets:
            twin = twins[tuple(target)]
            submits = target[0] == "submit"
            yield Attempt("environment:" + "+".join(sorted(env)), ATTACKER, target, env=env, cwd=home,
                          twin=None if submits or target[0] == "queues" else twin, submits=submits,
                          units_allowed=target[:2] == ["units", "list"], timeout=15)


def install_spool(families):
    return families.install.spool


def guessed_ids(families):
    """Ids derived from the victim's (neighbours, prefixes, case, padding, paths, patterns,
    overlong) for status and cancel: each answered exactly as the same derivation of an id that
    names nothing. Full mode adds random ids and --json."""
    install, victim, rng = families.install, families.victim, families.rng
    ids = victim.ids if families.full else [victim.ids[3]]
    for identifier in ids:
        item_path = f"{install.spool}/queues/allocation/ready"
        derived = [identifier] + neighbours(identifier) + [
            identifier[:10], identifier[:20], identifier[:25], identifier.upper(), identifier + "\n", " " + identifier,
            identifier + " ", identifier + "/", "../" + identifier, "./" + identifier, f"{item_path}/{identifier}",
            f"../../queues/allocation/ready/{identifier}", identifier + "*", identifier[:25] + "%", identifier[:25] + "_",
            identifier + "' OR '1'='1", identifier + "\x01", identifier + "\u200b", identifier + "x" * 38,
            identifier + "x" * 39, identifier * 40, identifier + "\t", "--" + identifier]
        commands = [["status"], ["cancel"]] + ([["status", "--json"], ["cancel", "--json"]] if families.full else [])
        if not families.full:
            derived, commands = derived[:1] + derived[7:], [["status"]]
        for value in derived:
            for command in commands:
                twin_value = derive_twin(identifier, value, rng)
                argv = command[:1] + [value] + command[1:]
                for user in ATTACKERS if families.full and command == ["status"] else [ATTACKER]:
                    yield Attempt("id:" + shape(identifier, value), user, argv,
                                  twin=(command[:1] + [twin_value] + command[1:], {}, [(value, twin_value)]))
    # Patterns for a customer: what matches is only ever the caller's own.
    customer = victim.customer
    for value in [customer, customer.upper(), "%", "_", "%" + customer[5:], customer[:5] + "%", "*", "' OR '1'='1",
                  customer + " ", " " + customer, customer + "\n", customer.replace(".", "_"), customer * 200][:None if families.full else 6]:
        for command in [["status", "--customer", value]] + ([["status", "--customer", value, "--json"]] if families.full else []):
            yield Attempt("customer:" + shape(customer, value), ATTACKER, command)
    if families.full:
        for _ in range(400):
            identifier = fake_id(rng, rng.choice(victim.ids))
            yield Attempt("id:random", ATTACKER, ["status", identifier], expect={77, 66})


def derive_twin(identifier, value, rng):
    twin = fake_id(rng, identifier)
    return value.replace(identifier, twin).replace(identifier.upper(), twin.upper()) if identifier in value or identifier.upper() in value \
        else value.replace(identifier[:25], twin[:25]) if identifier[:25] in value else value


def shape(original, value):
    """A short name for how `value` was derived from `original` (counts attack kinds)."""
    if value == original:
        return "exact"
    if original in value:
        return "wrapped" if len(value) < 3 * len(original) else "overlong"
    if value in original:
        return "prefix"
    return "derived"


def descriptors(families):
    """Closed standard descriptors, a full pipe or /dev/full as output, extra descriptors of the
    attacker's passed in, tiny limits: documented codes, and nothing written into the spool."""
    home, victim = families.home, families.victim
    reads = [["list"], ["status", victim.ids[1]], ["status", victim.own[ATTACKER], "--json"], ["units", "list"], ["queues"]]
    submit = ["submit", "--customer", "m@example.net", "--contact", "m@example.net", "--size", "S", "--from", "2098-07-01", "--months", "1"]
    extra = os.open(f"{home}/units.csv", os.O_RDWR)
    directory = os.open(home, os.O_RDONLY)
    for target in (reads if families.full else [reads[1]]) + [submit]:
        submits = target[0] == "submit"
        common = dict(cwd=home, submits=submits, units_allowed=target[:2] == ["units", "list"])
        if families.full or not submits:
            for close in [(0,), (1,), (2,), (0, 1, 2), (1, 2)]:
                yield Attempt("fd:closed-" + "".join(map(str, close)), ATTACKER, target, close=close, **common)
            yield Attempt("fd:dev-full", ATTACKER, target, redirect={1: "/dev/full"}, **common)
            yield Attempt("fd:inherited", ATTACKER, target, pass_fds=(extra, directory), **common)
        if not families.full and not submits:
            continue
        for name, limit in [("fsize-1", {resource.RLIMIT_FSIZE: (1, 1)}), ("fsize-soft", {resource.RLIMIT_FSIZE: (1, resource.RLIM_INFINITY)}),
                            ("nofile-5", {resource.RLIMIT_NOFILE: (5, 5)}), ("nofile-12", {resource.RLIMIT_NOFILE: (12, 12)}),
                            ("core-max", {resource.RLIMIT_CORE: (resource.RLIM_INFINITY, resource.RLIM_INFINITY)})]:
            yield Attempt("limit:" + name, ATTACKER, target, rlimits=limit, **common)
