# Helpers of the faults campaign (sourced by scripts/torture.d/faults after lib/common.sh).
# Expects: $bin (the built programs), $work (scratch), $here (scripts/torture.d).

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

log() { torture_log "$*"; }

violations=0
violation() {
    violations=$((violations + 1))
    torture_log "VIOLATION: $*"
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

# Product processes run under libfiu the way `fiu-run -x -c CMD… -f CTRL` runs them: the
# environment FIU_ENABLE (the enable commands, newline-separated), FIU_CTRL_FIFO (the control
# FIFO prefix fiu-ctrl talks to; empty: none) and LD_PRELOAD of libfiu's run and POSIX preload
# libraries, here with faultcount.so preloaded ahead of them so that every injected failure is
# logged (FAULTCOUNT_LOG). See ctl_fiu and fiu_env (faults.d/libfiu.sh).


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
        [[ $FAULTS == *"name=$point,"* ]] && continue  # one setting per point
        FAULTS+="enable_random name=$point,probability=$REPLY,failinfo=$code"$'\n'
    done
}

# A fresh spool for a part in $work/$1 (made current) with a small inventory.
make_spool() {
    spool_create --base "$work/$1" breaker_high_water=100000 breaker_low_water=50000 && spool_inventory S=5 M=5 L=4 > /dev/null
}

# spoolctl under the faults in FAULTS (libfiu enable commands), with the counter logging to $1.
#   ctl_fiu LOG ARGS…
ctl_fiu() {
    local logfile=$1 saved=(${TORTURE_ENV[@]+"${TORTURE_ENV[@]}"}) status=0
    shift
    TORTURE_ENV+=("FIU_ENABLE=$FAULTS" "FIU_CTRL_FIFO=" "FAULTCOUNT_LOG=$logfile"
                  "LD_PRELOAD=$SHIM:$FIU_LIB/fiu_run_preload.so:$FIU_LIB/fiu_posix_preload.so")
    ctl "$@" || status=$?
    TORTURE_ENV=(${saved[@]+"${saved[@]}"})
    return $status
}

# spoolctl with only the counter (a really full file system), logging to $1.
ctl_counted() {
    local logfile=$1 saved=(${TORTURE_ENV[@]+"${TORTURE_ENV[@]}"}) status=0
    shift
    TORTURE_ENV+=("FAULTCOUNT_LOG=$logfile" "LD_PRELOAD=$SHIM")
    ctl "$@" || status=$?
    TORTURE_ENV=(${saved[@]+"${saved[@]}"})
    return $status
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
    ctl list --json | python3 -c '
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

# After a part: the harness's settle (daemons restarted, reconcile, wait) and invariants, on
# the current spool. Adds their violations.
settle_and_check() {
    settle || true
    check_invariants "$@" || true
    violations=$((violations + TORTURE_VIOLATIONS))
}
