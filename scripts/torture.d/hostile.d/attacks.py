"""The attack tables: each family yields Attempts (see runner.py) for the attacker and the
bystander. Values aimed at the victim get a twin aimed at nothing, whose answer must be the same."""
import os
import stat
import subprocess

import commands
from runner import Attempt
from setup import ATTACKER, BYSTANDER, OPERATOR_GROUP, SPOOL_GROUP
from victim import fake_id, neighbours

# Commands only root and operators may run (documented in docs/operations.md): anyone else 77.
OPERATOR_ONLY = {("up",), ("reconcile",), ("units", "add"), ("units", "change"), ("units", "import"),
                 ("units", "retire"), ("dead", "list"), ("dead", "retry"), ("dead", "purge"), ("index", "rebuild")}
OPERATOR_ONLY |= {("occupancy",)}  # issue 11: business data, operators only
OPERATOR_ONLY |= {("prices", "set"), ("prices", "history"), ("units", "reinstate")}  # issue 11 (prices, waitlist)
ATTACKERS = [ATTACKER, BYSTANDER]


class Families:
    def __init__(self, install, victim, rng, full):
        self.install, self.victim, self.rng, self.full = install, victim, rng, full
        self.home = install.home[ATTACKER]
        self.planted = self.plant()

    # What the attacker can make where they can write (home = cwd): their own configuration
    # naming their group as the operators and their directory as the spool, a symlink to the
    # real spool and to the system configuration, a FIFO, a directory, a hard link if the
    # kernel allows one, a units file, and fake tools first on a PATH of theirs.
    def plant(self):
        home, install = self.home, self.install
        user = install.users[ATTACKER]
        paths = {}

        def own(path):
            os.lchown(path, user.uid, user.gid)
            return path

        os.makedirs(f"{home}/myspool", exist_ok=True)
        own(f"{home}/myspool")
        os.chmod(f"{home}/myspool", 0o777)
        paths["conf"] = own(_write(f"{home}/spool.conf", f"spool_root = {home}/myspool\noperator_group = {ATTACKER}\n"))
        paths["spool_link"] = own(_symlink(install.spool, f"{home}/spool-link"))
        paths["conf_link"] = own(_symlink(install.config, f"{home}/conf-link"))
        paths["group_link"] = own(_symlink(install.group_file, f"{home}/group-link"))
        fifo = f"{home}/fifo"
        if not os.path.exists(fifo):
            os.mkfifo(fifo)
        paths["fifo"] = own(fifo)
        paths["units"] = own(_write(f"{home}/units.csv", "id,size,site\nZ-9,S,main\n"))
        os.makedirs(f"{home}/bin", exist_ok=True)
        for tool in ["sh", "id", "getent", "spool-allocator", "spool-notifier", "sqlite3", "hostname"]:
            own(_write(f"{home}/bin/{tool}", f"#!/bin/sh\ntouch {home}/MARKER-path-{tool}\n", 0o755))
        os.makedirs(f"{home}/tmp", exist_ok=True)
        own(f"{home}/tmp")
        for name in ["etilqs_0000000000000000", "sqlite_tmp"]:
            own(_symlink(install.group_file, f"{home}/tmp/{name}"))
        # An LD_PRELOAD library and a gconv module that leave a marker if ever loaded.
        source = f"{home}/marker.c"
        _write(source, '#include <fcntl.h>\n#include <unistd.h>\n__attribute__((constructor)) static void marked(void) {'
               f' int fd = open("{home}/MARKER-preload", O_CREAT | O_WRONLY, 0644); if (fd >= 0) close(fd); }}\n'
               'int gconv(void) { return 0; } int gconv_init(void) { return 0; }\n')
        built = subprocess.run(["cc", "-shared", "-fPIC", "-o", f"{home}/marker.so", source], capture_output=True)
        paths["library"] = own(f"{home}/marker.so") if built.returncode == 0 else None
        os.makedirs(f"{home}/gconv", exist_ok=True)
        _write(f"{home}/gconv/gconv-modules", "module  MARKER//  INTERNAL  ../marker  1\nmodule INTERNAL MARKER// ../marker 1\n"
               "alias UTF-8// MARKER//\n")
        link = f"{home}/hardlink-conf"
        try:
            if not os.path.exists(link):
                subprocess.run(["runuser", "-u", ATTACKER, "--", "ln", install.config, link], capture_output=True)
        except OSError:
            pass
        paths["hardlink"] = link if os.path.exists(link) else None
        return paths

    def twin(self, argv, env=None, value=None):
        """The same argv with the victim's values swapped for ones that name nothing."""
        pairs = []
        for identifier in self.victim.ids:
            for word in argv:
                if identifier in word and (identifier, None) not in [(p[0], None) for p in pairs]:
                    pairs.append((identifier, fake_id(self.rng, identifier)))
        if any(self.victim.customer in word for word in argv):
            pairs.append((self.victim.customer, "nobody.nowhere@example.com"))
        if not pairs:
            return None
        swapped = []
        for word in argv:
            for old, new in pairs:
                word = word.replace(old, new)
            swapped.append(word)
        return (swapped, env or {}, pairs)

    # 1. Every command and option, enumerated from --help, aimed at the victim.
    def commands(self):
        install = self.install

        def run_help(path):
            return install.as_user(ATTACKER, [install.spoolctl] + path + ["--help"]).stdout

        values = commands.Values(install, self.victim, self.planted["units"], self.full)
        for path, usage in commands.leaf_commands(run_help):
            for argv in commands.argument_vectors(path, usage, values, self.full):
                for user in ATTACKERS if self.full else [ATTACKER]:
                    argv_used = argv
                    yield Attempt("command:" + " ".join(path), user, argv_used, twin=self.twin(argv_used),
                                  expect={77, 64} if tuple(path) in OPERATOR_ONLY else None,
                                  submits=path == ["submit"], units_allowed=path == ["units", "list"], timeout=20)

    # 2. Configuration files of the attacker's choosing, by option and by environment.
    def configurations(self):
        install, home, planted = self.install, self.home, self.planted
        files = [planted["conf"], "/etc/passwd", f"{install.spool}/index/status.sqlite", f"{install.spool}/journal",
                 f"{install.spool}/no-such-file", install.group_file, planted["fifo"], "/dev/zero", "/dev/stdin",
                 planted["conf_link"], home, "spool.conf", "./spool.conf", "/etc/self-storage/../self-storage/spool.conf",
                 "/etc/self-storage//spool.conf", "/proc/self/environ", "x" * 5000, "/etc/self-storage/spool.conf\n"]
        if planted["hardlink"]:
            files.append(planted["hardlink"])
        targets = [["list"], ["status", self.victim.ids[1]], ["cancel", self.victim.ids[3]], ["units", "add", "Z-1", "--size", "S"],
                   ["reconcile"], ["submit", "--customer", "m@example.net", "--contact", "m@example.net", "--size", "S",
                                   "--from", "2098-05-01", "--months", "1"]]
        if not self.full:
            targets = targets[1:3]
            files = [planted["conf"], install.group_file, planted["fifo"], planted["conf_link"], "spool.conf",
                     "/etc/self-storage//spool.conf"]
        for path in files:
            for target in targets:
                for how in ["option", "environment"]:
                    argv = target + (["--config", path] if how == "option" else [])
                    env = {"SPOOL_CONFIG": path} if how == "environment" else {}
                    yield Attempt(f"config:{how}", ATTACKER, argv, env=env, cwd=home, expect={77}, timeout=10)
        # A configuration and a spool in the cwd, without naming them: the system's are used.
        for target in targets:
            yield Attempt("config:cwd", ATTACKER, target, cwd=home, twin=self.twin(target), submits=target[0] == "submit")

    # 3. Spool roots of the attacker's choosing.
    def spool_roots(self):
        install, home = self.install, self.home
        refused = [f"{home}/myspool", self.planted["spool_link"], f"{install.spool}/.", f"{install.spool}/queues",
                   f"/tmp/../{install.spool.lstrip('/')}", "spool", "myspool", "/", f"{install.spool}//queues/..",
                   f"{install.spool}\n"]
        accepted = [install.spool, install.spool + "/", install.spool + "//"]
        targets = [["list"], ["status", self.victim.ids[1]], ["cancel", self.victim.ids[3]]]
        if self.full:
            targets += [["submit", "--customer", "m@example.net", "--contact", "m@example.net", "--size", "S",
                         "--from", "2098-05-01", "--months", "1"], ["units", "list"], ["queues"]]
        if not self.full:
            refused = refused[:3] + [refused[4], refused[5]]
            accepted = accepted[1:2]
            targets = targets[1:]
        for root, expect in [(r, {77}) for r in refused] + [(r, None) for r in accepted]:
            for target in targets:
                for how in ["option", "environment"]:
                    argv = target + (["--spool", root] if how == "option" else [])
                    env = {"SPOOL_ROOT": root} if how == "environment" else {}
                    yield Attempt(f"spool-root:{how}", ATTACKER, argv, env=env, cwd=home, expect=expect,
                                  twin=self.twin(argv, env) if expect is None else None, submits=target[0] == "submit",
                                  units_allowed=target[:2] == ["units", "list"])


    # 4. Batches (`submit --batch FILE`): files the attacker cannot read but the spool group can
    # (directly, through a symlink, in the spool), a FIFO nobody writes, an endless file, lines
    # that try to name who submitted them, and over the limits (by file and on stdin). FILE is
    # opened with the caller's rights: nothing of those files may come back, nothing be queued.
    def batches(self):
        install, home, planted = self.install, self.home, self.planted
        unreadable = [install.group_file, planted["group_link"], f"{install.spool}/format", f"{install.spool}/journal",
                      f"{install.spool}/index/status.sqlite", "/etc/shadow"]
        for path in unreadable:
            yield Attempt("batch:unreadable", ATTACKER, ["submit", "--batch", path], cwd=home, expect={66}, timeout=10)
        yield Attempt("batch:fifo", ATTACKER, ["submit", "--batch", planted["fifo"]], cwd=home, expect={64}, timeout=10)
        yield Attempt("batch:endless", ATTACKER, ["submit", "--batch", "/dev/zero"], cwd=home, expect={65}, timeout=20)
        line = ('{"customer":"mallory.as.alice@example.net","contact":"+4915550009999","size":"S","from":"2098-05-01",'
                '"months":1%s}')
        impersonating = _write(f"{home}/impersonating.jsonl", "\n".join(
            line % extra for extra in [',"submitted_by":0', ',"submitted_by_name":"root"', ',"id":"%s"' % self.victim.ids[1],
                                       ',"created_at":0']) + "\n")
        os.chown(impersonating, install.users[ATTACKER].uid, install.users[ATTACKER].gid)
        yield Attempt("batch:impersonating", ATTACKER, ["submit", "--batch", impersonating], cwd=home, expect={65},
                      twin=self.twin(["submit", "--batch", impersonating]), timeout=20)
        huge = _write(f"{home}/huge.jsonl", "\n".join([line % ""] * 10001) + "\n")
        os.chown(huge, install.users[ATTACKER].uid, install.users[ATTACKER].gid)
        yield Attempt("batch:limits", ATTACKER, ["submit", "--batch", huge], cwd=home, expect={65}, timeout=20)
        with open(huge, "rb") as handle:   # open while the runner runs the attempt (a generator)
            yield Attempt("batch:limits-stdin", ATTACKER, ["submit", "--batch", "-"], cwd=home, expect={65}, timeout=20,
                          stdin=handle)


def _write(path, text, mode=0o644):
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


def _symlink(target, path):
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(target, path)
    return path


__all__ = ["Families", "OPERATOR_ONLY", "stat", "OPERATOR_GROUP", "SPOOL_GROUP"]
