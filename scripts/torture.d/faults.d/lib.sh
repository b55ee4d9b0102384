# Helpers of the faults campaign (sourced by scripts/torture.d/faults).
# Expects: $bin (the built programs), $work (scratch), $seed; sets nothing else global
# except the counters and ledgers named below.

EIO=5
ENOSPC=28
FIU_LIB=/usr/lib/fiu
SHIM=""            # faultcount.so, built by build_shim

# The libfiu failure points tried (see /usr/share/doc/fiu-utils/function_list.gz). libfiu wraps
# open, close, read, write, pread, pwrite, ftruncate, fsync, fdatasync, rename, unlink,
# fdopendir, readdir and mmap; not openat, renameat, mkdirat, linkat (the FileSystemCalls seam,
# Tests/SpoolTests/FaultCampaignTests.swift, covers those).
FIU_POINTS=(posix/io/oc/open posix/io/oc/close posix/io/rw/read posix/io/rw/write posix/io/rw/pread
            posix/io/rw/pwrite posix/io/rw/ftruncate posix/io/sync/fsync posix/io/sync/fdatasync
            posix/io/dir/rename posix/io/dir/unlink posix/io/dir/fdopendir posix/io/dir/readdir
            posix/mm/mmap)

log() { printf '[faults] %s\n' "$*"; }

violations=0
violation() {
    violations=$((violations + 1))
    printf '[faults] VIOLATION: %s\n' "$*"
    printf '%s\n' "$*" >> "$work/violations.txt"
}

# Installs libfiu's tools and preload libraries (Debian fiu-utils) when missing.
ensure_fiu() {
    if ! command -v fiu-run > /dev/null || [[ ! -f $FIU_LIB/fiu_posix_preload.so ]]; then
        log "installing fiu-utils"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q fiu-utils > "$work/apt.log" 2>&1 \
            || { apt-get update -q > /dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q fiu-utils > "$work/apt.log" 2>&1; } \
            || { log "cannot install fiu-utils (see $work/apt.log)"; return 1; }
    fi
}

# Builds the counting preload library (faults.d/faultcount.c) into $work.
build_shim() {
    local cc
    cc=$(command -v cc || command -v gcc || command -v clang || echo /opt/swift/usr/bin/clang)
    SHIM=$work/faultcount.so
    "$cc" -shared -fPIC -O2 -o "$SHIM" "$here/faults.d/faultcount.c" -ldl
}

# Runs a command the way `fiu-run -x -f CTRL -c CMD…` does (FIU_ENABLE, FIU_CTRL_FIFO and
# LD_PRELOAD of libfiu's run and POSIX preload libraries), with faultcount.so preloaded ahead of
# libfiu so that every injected failure is logged to $FAULTCOUNT_LOG.
#   fiu_exec ENABLE_COMMANDS CTRL_PREFIX COMMAND…    (ENABLE_COMMANDS newline-separated; "" = none)
fiu_exec() {
    local enable=$1 ctrl=$2
    shift 2
    FIU_ENABLE="$enable" FIU_CTRL_FIFO="$ctrl" \
        LD_PRELOAD="$SHIM $FIU_LIB/fiu_run_preload.so $FIU_LIB/fiu_posix_preload.so" "$@"
}


# A seeded choice (no subshell: bash reseeds RANDOM in subshells): sets REPLY to one element
# of the array named $1.
pick() { local -n _a=$1; REPLY=${_a[RANDOM % ${#_a[@]}]}; }

# Random fault commands for libfiu, newline-separated, in FAULTS: N points, each with an errno
# and a probability from the arguments.   random_faults N PROBABILITIES…
random_faults() {
    local n=$1 i point code
    shift
    local probs=("$@") codes=("$EIO" "$ENOSPC")
    FAULTS=""
    for ((i = 0; i < n; i++)); do
        pick FIU_POINTS; point=$REPLY
        pick codes; code=$REPLY
        pick probs
        FAULTS+="enable_random name=$point,probability=$REPLY,failinfo=$code"$'\n'
    done
}

# Writes a spool configuration for spool root $2 into file $1 and imports UNITS units.
make_spool() {
    local conf=$1 root=$2 units=$3 i sizes=(S M L)
    printf 'spool_root = %s\n' "$root" > "$conf"
    : > "${conf%.conf}.units.csv"
    for ((i = 1; i <= units; i++)); do printf 'U%03d,%s,Site %s\n' "$i" "${sizes[i % 3]}" "${sizes[i % 3]}" >> "${conf%.conf}.units.csv"; done
    SPOOL_CONFIG=$conf SPOOL_ROOT="" "$bin/spoolctl" units import "${conf%.conf}.units.csv" > /dev/null
}

# Classifies an exit status: ok, code:N, or signal:NAME.
describe_status() {
    local rc=$1
    if ((rc == 0)); then echo ok
    elif ((rc > 128)); then echo "signal:$(kill -l $((rc - 128)) 2> /dev/null || echo $((rc - 128)))"
    else echo "code:$rc"; fi
}

# The errors of a failed command must be one clear line: its last stderr line names a cause.
# Prints the last line.
last_error_line() { grep -v '^[[:space:]]*$' "$1" | tail -n 1; }

# Tally: outcome counters in an associative array declared by the caller (`declare -A tally`).
bump() { local -n _t=$1; _t[$2]=$(( ${_t[$2]:-0} + 1 )); }

# The requests of the spool as TSV "id state customer" (from spoolctl list --json).
list_requests() {
    "$bin/spoolctl" list --json | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    print(r["id"], r["state"], r["customer"], sep="\t")'
}

# Waits until every id in file $1 (one a line, first column) is terminal, at most $2 seconds.
# Prints the ids not terminal (with their state) on failure; returns 0 when all are terminal.
wait_terminal() {
    local ids=$1 limit=$2 deadline=$((SECONDS + $2)) pending
    while :; do
        pending=$(list_requests 2> /dev/null | python3 -c '
import sys
states = {}
for line in sys.stdin:
    i, s, _ = line.rstrip("\n").split("\t")
    states[i] = s
terminal = {"confirmed", "rejected", "cancelled", "completed"}
for line in open(sys.argv[1]):
    i = line.split()[0]
    if states.get(i) not in terminal:
        print(i, states.get(i, "missing"))' "$ids")
        [[ -z $pending ]] && return 0
        ((SECONDS >= deadline)) && { printf '%s\n' "$pending"; return 1; }
        sleep 0.5
    done
}

# After a part: the harness's settle and invariants (scripts/torture.d/lib/common.sh) when it is
# there. $1 = the part's directory.
settle_and_check() {
    declare -F check_invariants > /dev/null || return 0
    if ! settle > "$1/settle.log" 2>&1; then violation "settle failed: $(tail -n 2 "$1/settle.log" | tr '\n' ' ')"; fi
    if ! check_invariants > "$1/invariants.log" 2>&1; then
        while IFS= read -r line; do violation "invariant: $line"; done < "$1/invariants.log"
    fi
}
