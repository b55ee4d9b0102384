"""The hostile campaign's installation: a setgid spoolctl, its system configuration, the
users, a victim's requests in every state, and what an attacker can plant where they can write.

Runs as root inside a private mount namespace (campaign.py enters it) in which the
installation's etc directory is bind-mounted over /etc/self-storage, as the Swift suite's
SetgidInstallation does: the host's /etc is never changed.
"""
import grp
import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import time

SPOOL_GROUP, OPERATOR_GROUP = "spool-e2e", "spool-ops-e2e"
VICTIM, ATTACKER, BYSTANDER, OPERATOR, DAEMON = "spool-alice", "spool-mallory", "spool-eve", "spool-carol", "spool-daemon"
CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# 78 (EX_CONFIG): `config check` of a file that is not a valid configuration (spoolctl --help).
EXIT_CODES = {0, 64, 65, 66, 73, 74, 75, 77, 78}


def sh(command, check=True):
    result = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{command}: {result.stderr.strip()}")
    return result


def ensure_accounts():
    for command in [f"getent group {SPOOL_GROUP} || groupadd {SPOOL_GROUP}",
                    f"getent group {OPERATOR_GROUP} || groupadd {OPERATOR_GROUP}",
                    f"id {VICTIM} || useradd -M -s /bin/sh {VICTIM}",
                    f"id {ATTACKER} || useradd -M -s /bin/sh {ATTACKER}",
                    f"id {BYSTANDER} || useradd -M -s /bin/sh {BYSTANDER}",
                    f"id {OPERATOR} || useradd -M -s /bin/sh {OPERATOR}",
                    f"usermod -a -G {OPERATOR_GROUP} {OPERATOR}",
                    f"id {DAEMON} || useradd -M -s /bin/sh -g {SPOOL_GROUP} {DAEMON}"]:
        sh(f"flock /tmp/spool-e2e-accounts.lock sh -c '{command}'")


class User:
    """An account and how to become it: real and effective ids, its groups from the database."""

    def __init__(self, name):
        entry = pwd.getpwnam(name)
        self.name, self.uid, self.gid = name, entry.pw_uid, entry.pw_gid
        self.groups = os.getgrouplist(name, entry.pw_gid)


class Installation:
    def __init__(self, base, bin_dir):
        self.base = base
        self.bin = f"{base}/bin"
        self.spoolctl = f"{self.bin}/spoolctl"
        self.etc = f"{base}/etc"
        self.spool = f"{base}/spool"
        self.config = "/etc/self-storage/spool.conf"
        ensure_accounts()
        self.users = {name: User(name) for name in [VICTIM, ATTACKER, BYSTANDER, OPERATOR, DAEMON]}
        self.spool_gid = grp.getgrnam(SPOOL_GROUP).gr_gid
        shutil.rmtree(base, ignore_errors=True)
        for directory in [self.bin, self.etc, self.spool]:
            os.makedirs(directory)
        for name in ["spoolctl", "spool-allocator", "spool-notifier"]:
            shutil.copy(f"{bin_dir}/{name}", f"{self.bin}/{name}")
        os.chmod(base, 0o755)
        os.chmod(self.bin, 0o755)
        os.chmod(self.etc, 0o755)
        os.chown(self.spoolctl, 0, self.spool_gid)
        os.chmod(self.spoolctl, 0o2755)
        os.chown(self.spool, 0, self.spool_gid)
        os.chmod(self.spool, 0o2770)
        self.write_config()
        # A file of the spool group's outside the spool: what a symlink planted by the attacker
        # would point spoolctl at, if it followed one with the group's rights.
        self.group_file = f"{base}/group-file"
        with open(self.group_file, "w") as handle:
            handle.write("the spool group's\n")
        os.chown(self.group_file, 0, self.spool_gid)
        os.chmod(self.group_file, 0o660)
        # The attacker's home, cwd and TMPDIR (sentinels: spoolctl must write nothing there).
        self.home = {}
        for name in [ATTACKER, BYSTANDER, VICTIM, OPERATOR]:
            home = f"{base}/home/{name}"
            os.makedirs(home)
            os.chown(home, self.users[name].uid, self.users[name].gid)
            os.chmod(home, 0o755)
            self.home[name] = home
        os.chmod(f"{base}/home", 0o755)

    def write_config(self, extra=""):
        with open(f"{self.etc}/spool.conf", "w") as handle:
            handle.write(f"spool_root = {self.spool}\noperator_group = {OPERATOR_GROUP}\n{extra}")
        os.chmod(f"{self.etc}/spool.conf", 0o644)

    def enter_namespace_mount(self):
        os.makedirs("/etc/self-storage", exist_ok=True)
        subprocess.run(["mount", "--bind", self.etc, "/etc/self-storage"], check=True)

    def as_root(self, arguments, timeout=60):
        return subprocess.run([self.spoolctl] + arguments, capture_output=True, text=True, timeout=timeout,
                              env={"PATH": CLEAN_PATH, "SPOOL_CONFIG": self.config, "SWIFT_BACKTRACE": "enable=no"})

    def as_user(self, name, argv, env=None, timeout=30, **kwargs):
        environment = {"PATH": CLEAN_PATH, "HOME": self.home.get(name, "/"), "SWIFT_BACKTRACE": "enable=no"}
        environment.update(env or {})
        if name != "root":
            user = self.users[name]
            kwargs.update(user=user.uid, group=user.gid, extra_groups=user.groups)
        return subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout, env=environment,
                              cwd=kwargs.pop("cwd", None) or self.home.get(name, "/"), **kwargs)

    def submit(self, name, customer, contact, start, key=None):
        arguments = [self.spoolctl, "submit", "--customer", customer, "--contact", contact, "--size", "S",
                     "--from", start, "--months", "1", "--json"] + (["--idempotency-key", key] if key else [])
        result = self.as_user(name, arguments)
        if result.returncode != 0:
            raise RuntimeError(f"submit as {name}: {result.returncode} {result.stderr.strip()}")
        return json.loads(result.stdout)["id"]

    def status(self, identifier):
        result = self.as_root(["status", identifier, "--json"])
        return json.loads(result.stdout) if result.returncode == 0 else None

    def run_daemons_until(self, condition, limit=60):
        """`spoolctl up --no-sample` as root until `condition()` holds; stopped with SIGTERM."""
        up = subprocess.Popen([self.spoolctl, "up", "--no-sample"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={"PATH": CLEAN_PATH, "SPOOL_CONFIG": self.config, "SWIFT_BACKTRACE": "enable=no"})
        deadline = time.monotonic() + limit
        try:
            while time.monotonic() < deadline and not condition():
                time.sleep(0.1)
            if not condition():
                raise RuntimeError("the daemons did not decide the victim's requests in time")
        finally:
            up.terminate()
            up.wait(timeout=30)


def snapshot(root):
    """Every entry below `root`: type, mode, owner, and content hash (files) or target (links).
    SQLite's shared-memory files are compared by mode and owner only (a read-only reader maps
    them); the content of every other file must stay the same byte for byte."""
    entries = {}
    for directory, names, files in os.walk(root):
        for name in names + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            kind = stat.S_IFMT(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                detail = os.readlink(path)
            elif stat.S_ISREG(info.st_mode) and not name.endswith("-shm"):
                with open(path, "rb") as handle:
                    detail = hashlib.sha256(handle.read()).hexdigest()
            else:
                detail = ""
            entries[os.path.relpath(path, root)] = (kind, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, detail)
    return entries


def differences(before, after):
    changed = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            changed.append(f"removed {path}")
        elif path not in before:
            changed.append(f"created {path}")
        elif before[path] != after[path]:
            changed.append(f"changed {path}")
    return changed
