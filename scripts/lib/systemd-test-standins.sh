# Stand-ins for scripts/systemd-test (SYSTEMD_TEST_STANDINS=1) on a branch that lacks a piece
# another branch of issue 10 brings: `spool-allocator --instance` (contract 4), `spoolctl compact`
# (contract 2), `spoolctl stats --prometheus` (contract 4) and scripts/build-deb (contract 5).
# They let the units, the template, the timers and the package checks be run before the merge;
# the checks that used one say so on their PASS/FAIL line. Never in CI: once the branches are
# merged, run scripts/systemd-test without them. Sourced; defines functions only.

# standin_dropins TREE: drop-ins under TREE/etc/systemd/system that replace each missing program
# with the nearest one that exists, keeping every other line of the unit (its hardening).
standin_dropins() {
    local d=$1/etc/systemd/system
    mkdir -p "$d/spool-allocator@.service.d" "$d/spool-compact.service.d" "$d/spool-stats.service.d"
    cat >"$d/spool-allocator@.service.d/95-systemd-test-standin.conf" <<'EOF'
[Service]
# systemd-test stand-in: the allocator without --instance (contract 4 not on this branch).
ExecStart=
ExecStart=spool-allocator --config /etc/self-storage/spool.conf
EOF
    cat >"$d/spool-compact.service.d/95-systemd-test-standin.conf" <<'EOF'
[Service]
# systemd-test stand-in: reconcile for compact (contract 2 not on this branch).
ExecStart=
ExecStart=spoolctl reconcile --config /etc/self-storage/spool.conf
EOF
    cat >"$d/spool-stats.service.d/95-systemd-test-standin.conf" <<'EOF'
[Service]
# systemd-test stand-in: a shell writes a textfile as stats --prometheus would (contract 4 not on
# this branch), after reading the spool as the unit's user and group.
ExecStart=
ExecStart=/bin/sh -c 'set -e; f=/var/lib/prometheus/node-exporter/self-storage.prom; spoolctl queues --config /etc/self-storage/spool.conf >/dev/null; printf "# HELP selfstorage_standin_up A stand-in for spoolctl stats.\\n# TYPE selfstorage_standin_up gauge\\nselfstorage_standin_up 1\\n" >"$f.tmp"; chmod 644 "$f.tmp"; mv "$f.tmp" "$f"'
EOF
}

# standin_deb TREE WORK VERSION: a .deb of the scripts/install --root tree TREE (paths under
# /usr/local, the postinst scripts/install generated), built in WORK; prints its path. It has what
# the checks need of contract 5's package: units enabled at install, daemons restarted at
# configure (upgrade), every service stopped by prerm on remove, the configuration a conffile.
standin_deb() {
    local tree=$1 work=$2 version=$3 root=$2/standin-deb
    rm -rf "$root" && mkdir -p "$root/DEBIAN" && cp -a "$tree/." "$root/" || return 1
    rm -rf "$root/var"   # the spool is made by the postinst (owner spool)
    cat >"$root/DEBIAN/control" <<EOF
Package: self-storage
Version: $version
Architecture: $(dpkg --print-architecture)
Maintainer: systemd-test stand-in <root@localhost>
Description: self-storage rental spool (systemd-test stand-in package)
 Made by scripts/lib/systemd-test-standins.sh from the scripts/install tree.
EOF
    echo /etc/self-storage/spool.conf >"$root/DEBIAN/conffiles"
    cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
[ "$1" = configure ] || exit 0
install -d -m 2770 /var/spool/self-storage
/usr/local/libexec/self-storage/postinst
# As the real package: dpkg itself gives every later spoolctl this owner and mode as it unpacks it.
dpkg-statoverride --list /usr/local/bin/spoolctl >/dev/null || dpkg-statoverride --update --add root spool 2755 /usr/local/bin/spoolctl
if [ ! -d /run/systemd/system ]; then
    systemctl enable spool-allocator.service spool-notifier.service spool-reconcile.timer spool-compact.timer spool-stats.timer
else
    systemctl try-restart 'spool-allocator@*.service'
fi
EOF
    cat >"$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop spool-reconcile.timer spool-compact.timer spool-stats.timer
    systemctl stop spool-allocator.service spool-notifier.service 'spool-*.service'
fi
EOF
    chmod 755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm"
    dpkg-deb -b -Znone "$root" "$work/self-storage_${version}_standin.deb" >/dev/null || return 1
    echo "$work/self-storage_${version}_standin.deb"
}
