# Shared helpers of the adversarial harness (scripts/torture). Source it from a campaign:
#
#     source "$(dirname "$0")/lib/common.sh"
#     torture_init kill "$@"          # parses --quick/--full/--seed/--keep, leaves the rest in TORTURE_ARGS
#     spool_create breaker_high_water=5000
#     spool_inventory S=3 M=2
#     daemon_start spool-allocator alloc1; daemon_start spool-notifier
#     submit_request --customer c1@example.com --size S --from 2031-01-01 --to 2031-02-01
#     settle && check_invariants
#     torture_result kill kills=1000
#
# Every process of the product runs with a clean environment: HOME, TMPDIR and the working
# directory are sentinel directories under $TORTURE_WORK/sentinel that must stay empty
# (check_invariants checks them), SWIFT_BACKTRACE=enable=no (processes are killed on purpose),
# SPOOL_CONFIG naming the spool's configuration and SPOOL_ROOT empty. Extra variables for the
# product's processes (LD_PRELOAD, FIU_*, …): put "NAME=value" words in the array TORTURE_ENV.
#
# Layout of one spool ("base", default $TORTURE_WORK; spool_create --base DIR makes another and
# switches to it; spool_use DIR switches back):
#     BASE/spool.conf  BASE/spool/  BASE/acked (ids of acknowledged submits, one a line)
#     BASE/cancels (ids of acknowledged cancels)  BASE/logs/NAME.log  BASE/pids/NAME
#     BASE/problems (lines check_invariants reports as violations: unclean stops, timeouts, …)
# See /work/wt/notes/harness-api.md (and docs/reliability.md) for the whole contract.

# ---------------------------------------------------------------------------------------------
# Set-up

TORTURE_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TORTURE_REPO=$(cd "$TORTURE_LIB/../../.." && pwd)

torture_log() { printf '[%s %s] %s\n' "$(date -u +%H:%M:%S)" "${TORTURE_CAMPAIGN:-torture}" "$*"; }
torture_die() { torture_log "error: $*" >&2; exit 2; }

# torture_init CAMPAIGN [ARGS...]: parses the common options (--quick, --full, --seed N, --keep,
# --work DIR), leaving every other argument in the array TORTURE_ARGS; sets TORTURE_MODE,
# TORTURE_SEED (default 1, printed; RANDOM is seeded with it), TORTURE_BIN (built if needed),
# TORTURE_WORK (fresh; created here when unset, removed by torture_finish on success unless
# --keep), the sentinel directories and the marker file for the outside-writes check.
torture_init() {
    TORTURE_CAMPAIGN=$1
    shift
    TORTURE_MODE=${TORTURE_MODE:-quick}
    TORTURE_SEED=${TORTURE_SEED:-1}
    TORTURE_KEEP=${TORTURE_KEEP:-0}
    TORTURE_ARGS=()
    while [ $# -gt 0 ]; do
        case $1 in
            --quick) TORTURE_MODE=quick ;;
            --full) TORTURE_MODE=full ;;
            --seed) TORTURE_SEED=${2:?--seed needs a number}; shift ;;
            --seed=*) TORTURE_SEED=${1#--seed=} ;;
            --keep) TORTURE_KEEP=1 ;;
            --work) TORTURE_WORK=${2:?--work needs a directory}; shift ;;
            *) TORTURE_ARGS+=("$1") ;;
        esac
        shift
    done
    case $TORTURE_SEED in ''|*[!0-9]*) torture_die "--seed must be a number, not '$TORTURE_SEED'" ;; esac
    RANDOM=$TORTURE_SEED
    export TORTURE_MODE TORTURE_SEED TORTURE_CAMPAIGN
    torture_bin
    TORTURE_OWN_WORK=0
    if [ -z "${TORTURE_WORK:-}" ]; then
        TORTURE_WORK=$(mktemp -d "${TMPDIR:-/tmp}/torture-$TORTURE_CAMPAIGN.XXXXXX")
        TORTURE_OWN_WORK=1
    fi
    mkdir -p "$TORTURE_WORK"
    TORTURE_WORK=$(cd "$TORTURE_WORK" && pwd)
    export TORTURE_WORK
    TORTURE_SENTINEL=$TORTURE_WORK/sentinel
    mkdir -p "$TORTURE_SENTINEL/home" "$TORTURE_SENTINEL/tmp" "$TORTURE_SENTINEL/cwd"
    if [ ! -e "$TORTURE_SENTINEL/marker" ]; then
        touch "$TORTURE_SENTINEL/marker"
        python3 "$TORTURE_LIB/invariants.py" snapshot --bin "$TORTURE_BIN" --base "$TORTURE_WORK" \
            --work "$TORTURE_WORK" --sentinel "$TORTURE_SENTINEL" || torture_die "cannot snapshot the outside paths"
    fi
    TORTURE_ENV=(${TORTURE_ENV[@]+"${TORTURE_ENV[@]}"})
    TORTURE_BG_PIDS=()
    trap torture_cleanup EXIT
    torture_log "mode=$TORTURE_MODE seed=$TORTURE_SEED (rerun: --seed $TORTURE_SEED) work=$TORTURE_WORK bin=$TORTURE_BIN"
}

# torture_bin: sets and exports TORTURE_BIN (the directory of the debug executables); when it
# is unset, it is `swift build --show-bin-path` of the repository, built first if an executable
# is missing or older than a source file.
torture_bin() {
    if [ -z "${TORTURE_BIN:-}" ]; then
        # shellcheck source=../../lib/ensure-toolchain.sh
        source "$TORTURE_REPO/scripts/lib/ensure-toolchain.sh"
        TORTURE_BIN=$(cd "$TORTURE_REPO" && swift build --show-bin-path)
        local stale=0 exe
        for exe in spoolctl spool-allocator spool-notifier; do
            [ -x "$TORTURE_BIN/$exe" ] || stale=1
        done
        if [ $stale = 0 ] && [ -n "$(find "$TORTURE_REPO/Sources" "$TORTURE_REPO/Package.swift" -newer "$TORTURE_BIN/spoolctl" -print -quit)" ]; then
            stale=1
        fi
        if [ $stale = 1 ]; then
            torture_log "building the debug executables (swift build)"
            (cd "$TORTURE_REPO" && swift build >/dev/null) || torture_die "swift build failed"
        fi
    fi
    [ -x "$TORTURE_BIN/spoolctl" ] || torture_die "no spoolctl in TORTURE_BIN=$TORTURE_BIN"
    export TORTURE_BIN
}

# torture_cleanup: the EXIT trap. Kills (SIGKILL, by pid) every daemon and background job this
# shell started through the library and that still runs.
torture_cleanup() {
    local pid file
    for pid in ${TORTURE_BG_PIDS[@]+"${TORTURE_BG_PIDS[@]}"}; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    for file in "${TORTURE_WORK:-/nonexistent}"/pids/* "${TORTURE_WORK:-/nonexistent}"/*/pids/*; do
        [ -f "$file" ] || continue
        pid=$(cat "$file" 2>/dev/null) || continue
        [ -n "$pid" ] && _torture_alive "$pid" && kill -KILL "$pid" 2>/dev/null
        rm -f "$file"
    done
    wait 2>/dev/null || true
}

# torture_bg COMMAND...: runs a shell command (function) in the background, remembered for the
# cleanup; its pid is in TORTURE_LAST_BG (wait for it with torture_wait_pid; its exit status is
# not kept).
torture_bg() {
    "$@" &
    TORTURE_LAST_BG=$!
    disown "$TORTURE_LAST_BG"  # no "Killed" line when a campaign kills it; torture_wait_pid polls
    TORTURE_BG_PIDS+=("$TORTURE_LAST_BG")
}

# torture_result CAMPAIGN VIOLATIONS [key=value ...]: prints the final RESULT line.
torture_result() {
    local campaign=$1 violations=$2
    shift 2
    echo "RESULT $campaign violations=$violations${*:+ $*}"
}

# torture_finish VIOLATIONS: removes TORTURE_WORK if this script created it, the run passed and
# --keep was not given; otherwise prints where it is. Returns 0 iff VIOLATIONS is 0.
torture_finish() {
    local violations=$1
    torture_cleanup
    if [ "$violations" = 0 ] && [ "$TORTURE_OWN_WORK" = 1 ] && [ "$TORTURE_KEEP" = 0 ]; then
        rm -rf "$TORTURE_WORK"
    else
        torture_log "work directory kept: $TORTURE_WORK"
    fi
    [ "$violations" = 0 ]
}

# ---------------------------------------------------------------------------------------------
# Spools

# spool_create [--base DIR] [key=value ...]: a fresh spool in BASE (default $TORTURE_WORK):
# BASE/spool.conf (spool_root = BASE/spool plus the settings given) and the record files; makes
# BASE the current spool (TORTURE_BASE, TORTURE_CONFIG, TORTURE_SPOOL).
spool_create() {
    local base=$TORTURE_WORK
    if [ "${1:-}" = --base ]; then base=$2; shift 2; fi
    mkdir -p "$base"
    base=$(cd "$base" && pwd)
    [ -e "$base/spool" ] && torture_die "spool_create: $base/spool exists already"
    mkdir -p "$base/logs" "$base/pids"
    : >"$base/acked"; : >"$base/cancels"; : >"$base/problems"
    {
        echo "spool_root = $base/spool"
        local setting
        for setting in "$@"; do
            echo "${setting%%=*} = ${setting#*=}"
        done
    } >"$base/spool.conf"
    spool_use "$base"
}

# spool_use BASE: makes BASE (made by spool_create) the current spool.
spool_use() {
    TORTURE_BASE=$1
    TORTURE_CONFIG=$1/spool.conf
    TORTURE_SPOOL=$1/spool
    export TORTURE_BASE TORTURE_CONFIG TORTURE_SPOOL
}

# torture_problem TEXT: records a problem check_invariants reports as a violation.
torture_problem() {
    torture_log "problem: $*" >&2
    echo "$*" >>"$TORTURE_BASE/problems"
}

# ---------------------------------------------------------------------------------------------
# Running the product

# The environment of every product process.
_torture_env() {
    _TORTURE_ENV=(PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
                  HOME="$TORTURE_SENTINEL/home" TMPDIR="$TORTURE_SENTINEL/tmp"
                  SWIFT_BACKTRACE=enable=no SPOOL_CONFIG="$TORTURE_CONFIG" SPOOL_ROOT=
                  SPOOL_LOG_LEVEL="${TORTURE_LOG_LEVEL:-info}" ${TORTURE_ENV[@]+"${TORTURE_ENV[@]}"})
}

# torture_exec PROGRAM [ARGS...]: runs $TORTURE_BIN/PROGRAM in the foreground in the sentinel
# working directory with the product environment; returns its exit status.
torture_exec() {
    local program=$1
    shift
    _torture_env
    (cd "$TORTURE_SENTINEL/cwd" && exec env -i "${_TORTURE_ENV[@]}" "$TORTURE_BIN/$program" "$@")
}

# ctl ARGS...: spoolctl on the current spool (as root: not restricted).
ctl() { torture_exec spoolctl "$@"; }

# _torture_alive PID: true while PID runs (a zombie counts as gone).
_torture_alive() {
    local state
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed -E 's/^[0-9]+ \(.*\) (.) .*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# torture_wait_pid PID [SECONDS=30]: waits until PID is gone; returns its exit status when it is
# a child of this shell (128+N for a signal), 0 when that is not known, 124 on timeout.
torture_wait_pid() {
    local pid=$1 limit=${2:-30} waited=0 status=0
    while _torture_alive "$pid"; do
        sleep 0.05
        waited=$((waited + 1))
        [ $waited -ge $((limit * 20)) ] && return 124
    done
    wait "$pid" 2>/dev/null || status=$?
    [ $status = 127 ] && status=0  # not our child: unknown
    return $status
}

# daemon_start KIND [NAME]: starts $TORTURE_BIN/KIND (spool-allocator, spool-notifier) in the
# background as NAME (default KIND); pid in BASE/pids/NAME, output appended to BASE/logs/NAME.log.
# A wrapper subshell waits for it and writes its exit status (128+N for signal N) to
# BASE/exits/PID (so the shell prints no "Killed" lines, and any shell can learn the status).
daemon_start() {
    local kind=$1 name=${2:-$1} pidfile waited=0
    pidfile=$TORTURE_BASE/pids/$name
    rm -f "$pidfile"
    mkdir -p "$TORTURE_BASE/exits"
    _torture_env
    (
        cd "$TORTURE_SENTINEL/cwd" || exit 1
        env -i "${_TORTURE_ENV[@]}" "$TORTURE_BIN/$kind" &
        daemon=$!
        echo "$daemon" >"$pidfile.new" && mv "$pidfile.new" "$pidfile"
        echo "== started $name pid $daemon $(date -u +%H:%M:%S.%N)"
        status=0
        wait "$daemon" || status=$?
        echo "$status" >"$TORTURE_BASE/exits/$daemon"
    ) >>"$TORTURE_BASE/logs/$name.log" 2>&1 &
    while [ ! -s "$pidfile" ]; do
        sleep 0.01
        waited=$((waited + 1))
        [ $waited -lt 1000 ] || torture_die "daemon_start $kind: no pid after 10 s"
    done
}

# daemon_exit_status PID [SECONDS=5]: prints the exit status of a daemon started by daemon_start
# once it has exited (waits for its wrapper to record it); false if not known in time.
daemon_exit_status() {
    local file=$TORTURE_BASE/exits/$1 waited=0
    while [ ! -s "$file" ]; do
        sleep 0.02
        waited=$((waited + 1))
        [ $waited -lt $((${2:-5} * 50)) ] || return 1
    done
    cat "$file"
}

# daemon_pid NAME: prints NAME's pid if it runs; false otherwise.
daemon_pid() {
    local pid
    pid=$(cat "$TORTURE_BASE/pids/$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && _torture_alive "$pid" && echo "$pid"
}

# daemon_names: the names of the daemons started on the current spool (running or not).
daemon_names() {
    local file
    for file in "$TORTURE_BASE"/pids/*; do
        [ -f "$file" ] && basename "$file"
    done
}

# daemon_stop NAME [SECONDS=30]: SIGTERM, then waits; returns the exit status. A daemon that
# does not stop within SECONDS is killed and recorded as a problem (124); a non-zero exit of a
# daemon stopped with SIGTERM is recorded too.
daemon_stop() {
    local name=$1 limit=${2:-30} pid status=0
    pid=$(cat "$TORTURE_BASE/pids/$name" 2>/dev/null) || return 0
    rm -f "$TORTURE_BASE/pids/$name"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    torture_wait_pid "$pid" "$limit" || status=$?
    if [ $status != 124 ]; then status=$(daemon_exit_status "$pid") || status=unknown; fi
    if [ $status = 124 ]; then
        kill -KILL "$pid" 2>/dev/null || true
        torture_wait_pid "$pid" 10 || true
        torture_problem "$name (pid $pid) did not stop within $limit s of SIGTERM"
    elif [ "$status" != 0 ]; then
        torture_problem "$name (pid $pid) exited $status on SIGTERM (expected 0)"
        status=1
    fi
    return $status
}

# daemon_kill NAME: SIGKILL and wait (a crash). Returns 0.
daemon_kill() {
    local name=$1 pid
    pid=$(cat "$TORTURE_BASE/pids/$name" 2>/dev/null) || return 0
    rm -f "$TORTURE_BASE/pids/$name"
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    torture_wait_pid "$pid" 30 || true
    return 0
}

# daemons_stop_all: daemon_stop for every daemon of the current spool; returns 1 if any stop
# was unclean.
daemons_stop_all() {
    local name failed=0
    for name in $(daemon_names); do
        daemon_stop "$name" || failed=1
    done
    return $failed
}

# ---------------------------------------------------------------------------------------------
# Inventory, submits and cancels

# spool_inventory SIZE=COUNT ...: adds COUNT units of each SIZE (ids SIZE-1 …, site "Site
# SIZE") with one `spoolctl units import`.
spool_inventory() {
    local spec size count i file=$TORTURE_BASE/units.csv
    echo "id,size,site" >"$file"
    for spec in "$@"; do
        size=${spec%%=*}; count=${spec#*=}
        for ((i = 1; i <= count; i++)); do echo "$size-$i,$size,Site $size"; done >>"$file"
    done
    ctl units import "$file" >/dev/null || torture_die "spoolctl units import $file failed"
}

# submit_request ARGS...: `spoolctl submit ARGS... --json`. An id printed on stdout counts as
# acknowledged (even when the process was killed after printing it; then its exit status is not
# 0) and is appended to BASE/acked. Prints the id; returns spoolctl's exit status (0 with an id:
# acknowledged). If TORTURE_PID_FILE is set, spoolctl's pid is written there while it runs (for
# a killer).
submit_request() {
    local out status=0 id
    out=$(mktemp "$TORTURE_BASE/submit.XXXXXX")
    _torture_env
    (cd "$TORTURE_SENTINEL/cwd" && exec env -i "${_TORTURE_ENV[@]}" "$TORTURE_BIN/spoolctl" submit "$@" --json) \
        >"$out" 2>>"$TORTURE_BASE/logs/submit.err" &
    local pid=$!
    [ -n "${TORTURE_PID_FILE:-}" ] && echo "$pid" >"$TORTURE_PID_FILE"
    wait "$pid" 2>/dev/null || status=$?
    [ -n "${TORTURE_PID_FILE:-}" ] && : >"$TORTURE_PID_FILE"
    id=""
    # An error object ({"error": …}) acknowledges nothing, whatever it names.
    grep -q '"error"' "$out" || id=$(sed -nE 's/^ *"id" *: *"([A-Za-z0-9._-]+)".*/\1/p' "$out" | head -n 1)
    rm -f "$out"
    if [ -n "$id" ]; then
        echo "$id" >>"$TORTURE_BASE/acked"
        echo "$id"
    fi
    return $status
}

# cancel_request ID: `spoolctl cancel ID --json`. A cancel acknowledged as requested (exit 0,
# "cancel-requested") is appended to BASE/cancels. Returns spoolctl's exit status. A no-op
# (already rejected or cancelled) returns 0 and is not recorded. TORTURE_PID_FILE as above.
cancel_request() {
    local id=$1 out status=0
    out=$(mktemp "$TORTURE_BASE/cancel.XXXXXX")
    _torture_env
    (cd "$TORTURE_SENTINEL/cwd" && exec env -i "${_TORTURE_ENV[@]}" "$TORTURE_BIN/spoolctl" cancel "$id" --json) \
        >"$out" 2>>"$TORTURE_BASE/logs/cancel.err" &
    local pid=$!
    [ -n "${TORTURE_PID_FILE:-}" ] && echo "$pid" >"$TORTURE_PID_FILE"
    wait "$pid" 2>/dev/null || status=$?
    [ -n "${TORTURE_PID_FILE:-}" ] && : >"$TORTURE_PID_FILE"
    if [ $status = 0 ] && grep -q '"cancel-requested"' "$out"; then
        echo "$id" >>"$TORTURE_BASE/cancels"
    fi
    rm -f "$out"
    return $status
}

# torture_random_period: prints "--from A --to B" for a random period of 1–90 days starting
# within the next 2 years after 2031-01-01 (the future: nothing completes during a run).
torture_random_period() {
    local start=$((RANDOM % 730)) length=$((1 + RANDOM % 90))
    echo "--from $(date -u -d "2031-01-01 + $start days" +%F) --to $(date -u -d "2031-01-01 + $((start + length)) days" +%F)"
}

# ---------------------------------------------------------------------------------------------
# Settling and checking

# settle [--timeout SECONDS] [--allocators N] [--reconcile-ok "0 65"]: stops every daemon of the
# current spool (cleanly, SIGTERM), starts N allocators (default 1) and a notifier, runs
# `spoolctl reconcile`, waits until every acknowledged request is terminal and notified and the
# queues are empty (timeout default 120 s quick, 600 s full), stops the daemons cleanly and runs
# `spoolctl reconcile` again. A reconcile exiting outside --reconcile-ok (default "0"), a timeout
# or an unclean stop is recorded as a problem. Returns 1 on a timeout.
settle() {
    local timeout=120 allocators=1 ok="0" status i pending=""
    [ "$TORTURE_MODE" = full ] && timeout=600
    while [ $# -gt 0 ]; do
        case $1 in
            --timeout) timeout=$2; shift ;;
            --allocators) allocators=$2; shift ;;
            --reconcile-ok) ok=$2; shift ;;
            *) torture_die "settle: unknown option $1" ;;
        esac
        shift
    done
    torture_log "settle: restarting the daemons, reconcile, waiting for $(sort -u "$TORTURE_BASE/acked" | wc -l) acknowledged requests"
    daemons_stop_all || true
    for ((i = 1; i <= allocators; i++)); do daemon_start spool-allocator "settle-allocator-$i"; done
    daemon_start spool-notifier settle-notifier
    status=0; ctl reconcile >>"$TORTURE_BASE/logs/reconcile.log" 2>&1 || status=$?
    [[ " $ok " == *" $status "* ]] || torture_problem "spoolctl reconcile (daemons running) exited $status (see logs/reconcile.log)"
    local deadline=$((SECONDS + timeout)) settled=1
    while :; do
        pending=$(_torture_invariants pending 2>&1) && break
        if [ $SECONDS -ge $deadline ]; then settled=0; break; fi
        sleep 0.5
    done
    if [ $settled = 0 ]; then
        torture_problem "settle: not settled within $timeout s: $pending"
    fi
    daemons_stop_all || true
    status=0; ctl reconcile >>"$TORTURE_BASE/logs/reconcile.log" 2>&1 || status=$?
    [[ " $ok " == *" $status "* ]] || torture_problem "spoolctl reconcile (daemons stopped) exited $status (see logs/reconcile.log)"
    [ $settled = 1 ] && torture_log "settle: done"
    [ $settled = 1 ]
}

_torture_invariants() {
    local outside_exclude=() path
    for path in ${TORTURE_OUTSIDE_EXCLUDE:-}; do outside_exclude+=(--outside-exclude "$path"); done
    TORTURE_ENV_WORDS="${TORTURE_ENV[*]}" python3 "$TORTURE_LIB/invariants.py" --bin "$TORTURE_BIN" --base "$TORTURE_BASE" \
        --sentinel "$TORTURE_SENTINEL" --work "$TORTURE_WORK" \
        ${outside_exclude[@]+"${outside_exclude[@]}"} "$@"
}

# check_invariants [invariants.py options]: runs every check on the current spool (daemons must
# be stopped: run settle first); prints one line per violation; sets TORTURE_VIOLATIONS to their
# number and returns 0 iff there are none. Options (see invariants.py --help): --skip CHECK,
# --allow-rebuild-exit N, --allow-dead, --outside-exclude PATH, …
check_invariants() {
    local out status=0
    out=$(_torture_invariants check "$@") || status=$?
    [ -n "$out" ] && printf '%s\n' "$out"
    TORTURE_VIOLATIONS=$(printf '%s\n' "$out" | grep -c '^VIOLATION' || true)
    if [ $status != 0 ] && [ "$TORTURE_VIOLATIONS" = 0 ]; then
        TORTURE_VIOLATIONS=1  # the checker itself failed
        echo "VIOLATION checker: invariants.py exited $status"
    fi
    torture_log "invariants: $TORTURE_VIOLATIONS violation(s)"
    [ "$TORTURE_VIOLATIONS" = 0 ]
}
