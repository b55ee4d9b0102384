"""The `outside` check: nothing written outside the spool (the sentinel HOME, TMPDIR and working
directory stay empty; under the outside roots no path appeared, disappeared or changed since the
snapshot), and the `snapshot` subcommand that records the paths at the start."""
import os
import subprocess

# Roots of the outside-writes check, and paths under them that other software writes all the
# time (package manager, logs, caches of the toolchain and shells). A write the product made
# there would be missed: see docs/reliability.md, "Limits of the harness".
OUTSIDE_ROOTS = ["/etc", "/var", "/root", "/home", "/usr/local"]
OUTSIDE_NOISY = ["/var/log", "/var/cache", "/var/lib/apt", "/var/lib/dpkg", "/var/lib/systemd",
                 "/var/lib/dhcp", "/var/lib/logrotate", "/var/lib/private", "/var/lib/machines",
                 "/var/tmp", "/var/mail", "/var/spool/cron", "/root/.cache", "/root/.swiftpm",
                 "/root/.local", "/root/.config", "/root/.pyenv", "/root/.rustup", "/root/.cargo", "/root/.claude", "/root/.npm", "/root/.bash_history",
                 "/root/.python_history", "/root/.lesshst", "/root/.viminfo", "/root/.wget-hsts",
                 "/etc/ld.so.cache", "/etc/mtab", "/etc/resolv.conf"]


class Outside:
    def check_outside(self):
        for name in ("home", "tmp", "cwd"):
            path = os.path.join(self.sentinel, name)
            if not os.path.isdir(path):
                self.violation("outside", f"sentinel directory {path} is gone")
                continue
            for dirpath, dirnames, filenames in os.walk(path):
                for entry in dirnames + filenames:
                    self.violation("outside", f"written into the sentinel {name.upper() if name != 'cwd' else 'working directory'}: {os.path.join(dirpath, entry)}")
        marker = os.path.join(self.sentinel, "marker")
        if not os.path.exists(marker):
            self.violation("outside", f"no marker file {marker}")
            return
        before_path = os.path.join(self.sentinel, "outside.before")
        if not os.path.exists(before_path):
            self.violation("outside", f"no snapshot {before_path} (invariants.py snapshot at the start)")
            return
        with open(before_path, encoding="utf-8", errors="surrogateescape") as file:
            before = {line.rstrip("\n") for line in file}
        now = {path: kind for path, kind in self.outside_paths(marker)}
        # A new path (file or directory), a file whose content or inode changed after the marker,
        # or a path that disappeared. A directory whose entries changed is not reported itself
        # (its new entries are): other software creates and removes lock files in /etc.
        changed = sorted([path for path, kind in now.items() if path not in before or kind == "changed-file"]
                         + [f"{path} (removed)" for path in before - set(now)])
        for path in changed[:30]:
            self.violation("outside", f"written during the campaign, outside the spool: {path}")
        if len(changed) > 30:
            self.violation("outside", f"{len(changed) - 30} more paths changed outside the spool")

    def outside_paths(self, marker):
        """(path, kind) for every path under the outside roots, excluded trees pruned; kind is
        "changed-file" for a non-directory modified (mtime or ctime) after `marker`."""
        excluded = OUTSIDE_NOISY + (self.args.outside_exclude or [])
        excluded += [p for p in (self.args.work, self.base, os.path.dirname(os.path.realpath(self.args.bin))) if p]
        prune = []
        for path in excluded:
            prune += ["-path", os.path.realpath(path), "-o"]
        roots = [top for top in OUTSIDE_ROOTS if os.path.isdir(top)]
        result = subprocess.run(["find", *roots, "-xdev", "(", *prune[:-1], ")", "-prune", "-o",
                                 "(", "!", "-type", "d", "(", "-newer", marker, "-o", "-cnewer", marker, ")",
                                 "-printf", "changed-file %p\\n", ")", "-o", "-printf", "path %p\\n"],
                                capture_output=True, text=True, errors="surrogateescape")
        for line in result.stdout.splitlines():
            kind, _, path = line.partition(" ")
            yield path, kind

    def snapshot(self):
        """Records every path under the outside roots (the start of the outside check)."""
        marker = os.path.join(self.sentinel, "marker")
        with open(os.path.join(self.sentinel, "outside.before"), "w", encoding="utf-8", errors="surrogateescape") as file:
            for path, _ in self.outside_paths(marker):
                file.write(path + "\n")
