"""Every command and option of spoolctl, read from its own --help (so a new command or option is
attacked without anyone editing this file), and the attacker's argument vectors for them."""
import itertools
import re


def leaf_commands(run_help):
    """[(path, usage)] for every runnable command: `run_help(path)` returns the help text of
    `spoolctl PATH --help`; commands with SUBCOMMANDS are descended into."""
    result = []

    def visit(path):
        text = run_help(path)
        subcommands = []
        section = None
        for line in text.splitlines():
            if re.match(r"^[A-Z][A-Z ]+:", line):
                section = line.split(":")[0]
                continue
            match = re.match(r"^  ([a-z][a-z-]*)\s", line)
            if section == "SUBCOMMANDS" and match:
                subcommands.append(match.group(1))
        usage = re.search(r"USAGE: spoolctl(.*?)(\n\n|$)", text, re.S)
        if subcommands:
            for name in subcommands:
                if name != "help":
                    visit(path + [name])
        elif usage:
            result.append((path, " ".join(usage.group(1).split())))

    visit([])
    return result


def parse_usage(path, usage):
    """(required, optional): each a list of ("option", name, takes_value) or ("argument", name)."""
    words = usage.split()[len(path):]
    required, optional = [], []
    index = 0
    while index < len(words):
        word = words[index]
        optional_word = word.startswith("[")
        core = word.strip("[]")
        target = optional if optional_word else required
        if core.startswith("--"):
            following = words[index + 1].strip("[]") if index + 1 < len(words) else ""
            takes_value = not word.endswith("]") and following.startswith("<") and \
                (optional_word or following.strip("<>.") == core[2:])
            if takes_value:
                index += 1
            target.append(("option", core, takes_value))
        elif core.startswith("<"):
            target.append(("argument", core.strip("<>.")))
        index += 1
    return required, optional


class Values:
    """What the attacker passes for each option and argument: aimed at the victim."""

    def __init__(self, install, victim, attacker_file, full):
        ids = victim.ids if full else [victim.ids[1], victim.ids[3]]
        self.table = {
            "--customer": [victim.customer], "--contact": [victim.contact], "--size": ["S"],
            "--from": ["2098-05-01"], "--to": ["2098-06-01"], "--months": ["1"],
            "--idempotency-key": ["alice-key-1"], "--wait": ["1"],
            "--state": ["received", "confirmed", "cancelled", "rejected"] if full else ["confirmed"],
            "--site": ["alpha-site"], "--queue": ["allocation", "notifications"] if full else ["allocation"],
            "--spool": [install.spool], "--config": [install.config],
        }
        self.request_ids = ids
        self.own = {"--customer": ["mallory.as.alice@example.net"], "--contact": ["+4915550009999"],
                    "--from": ["2098-05-01"], "--to": ["2098-06-01"]}
        self.unit_ids = ["A-1", "Z-9"] if full else ["A-1"]
        self.files = [attacker_file, install.group_file] if full else [attacker_file]

    def for_argument(self, path, name):
        if name == "file":
            return self.files
        if path[0] == "units":
            return self.unit_ids
        return self.request_ids

    def for_option(self, name, path=()):
        if list(path) == ["submit"] and name in self.own:
            return self.own[name]   # a submit is the attacker's own request (see Victim.secrets)
        return self.table.get(name, ["x"])


def argument_vectors(path, usage, values, full):
    """Argument vectors for one command: its required parts filled in every way the value table
    allows, plus each optional part alone (quick) or every combination of them (full)."""
    required, optional = parse_usage(path, usage)
    if path == ["status"]:
        # `<id>` and `--customer` exclude each other: one of them is required.
        required = [("argument", "id")]
        optional = [part for part in optional if part[:2] != ("argument", "id")]
        yield from argument_vectors_for(path, [("option", "--customer", True)],
                                        [p for p in optional if p[1] != "--customer"], values, full)
        optional = [p for p in optional if p[1] != "--customer"]
    yield from argument_vectors_for(path, required, optional, values, full)


def argument_vectors_for(path, required, optional, values, full):
    def choices(part):
        if part[0] == "argument":
            return [[value] for value in values.for_argument(path, part[1])]
        if not part[2]:
            return [[part[1]]]
        return [[part[1], value] for value in values.for_option(part[1], path)]

    # --spool and --config are attacked separately (spool roots and configuration files).
    optional = [part for part in optional if part[1] not in ("--spool", "--config")]
    base = [choices(part) for part in required]
    if full:
        extra_sets = [subset for size in range(len(optional) + 1) for subset in itertools.combinations(optional, size)]
    else:
        extra_sets = [()] + [(part,) for part in optional]
    seen = set()
    for extras in extra_sets:
        if ("option", "--to", True) in extras and ("option", "--months", True) in extras:
            continue
        pools = base + [choices(part) for part in extras]
        combinations = itertools.product(*pools) if full else [tuple(pool[0] for pool in pools)] + \
            [tuple(pool[i % len(pool)] for pool in pools) for i in range(1, max([len(p) for p in pools] + [1]))]
        for combination in combinations:
            argv = list(path) + [word for chosen in combination for word in chosen]
            if tuple(argv) not in seen:
                seen.add(tuple(argv))
                yield argv
