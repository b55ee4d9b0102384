# Daemon supervision for the faults campaign (sourced). A daemon that exits is restarted, as
# systemd's Restart=always would; its exit is recorded: a documented code (0, 74, 75) is an
# outcome, death by a signal we did not send (or 65, 78: no restart) is a violation.

declare -A dpid=() dlaunch=() dlog=()
declare -A dexits=()   # "daemon:outcome" → count
DENV=()                # set by a launcher: VAR=value words for the daemon's environment

# start_daemon NAME LAUNCHER LOG: NAME is allocator, allocator2 or notifier; LAUNCHER is a
# function that fills DENV (e.g. with libfiu's variables); the daemon's pid is the subshell's,
# which execs it.
start_daemon() {
    local name=$1 launcher=$2 logfile=$3 program kv
    case $name in allocator*) program=spool-allocator ;; *) program=spool-notifier ;; esac
    dlaunch[$name]=$launcher
    dlog[$name]=$logfile
    DENV=()
    "$launcher" "$name"
    (
        for kv in "${DENV[@]}"; do export "${kv?}"; done
        export SWIFT_BACKTRACE=enable=no SPOOL_LOG_LEVEL=notice
        exec "$bin/$program" >> "$logfile" 2>&1
    ) &
    dpid[$name]=$!
}

# A launcher without faults.
plain_env() { DENV=(); }

# Restarts every daemon that exited, recording how it ended.
supervise() {
    local name rc
    for name in "${!dpid[@]}"; do
        if ! kill -0 "${dpid[$name]}" 2> /dev/null; then
            wait "${dpid[$name]}"; rc=$?
            record_exit "$name" "$rc" unexpected
            start_daemon "$name" "${dlaunch[$name]}" "${dlog[$name]}"
        fi
    done
}

record_exit() {
    local name=$1 rc=$2 how=$3 outcome
    outcome=$(describe_status "$rc")
    bump dexits "${name%2}:$outcome"
    case $outcome in
        ok | code:74 | code:75) ;;
        signal:TERM) [[ $how == stopped ]] || violation "$name died by SIGTERM nobody sent (log ${dlog[$name]})" ;;
        *) violation "$name exited $outcome (log ${dlog[$name]}): $(grep -v '^\s*$' "${dlog[$name]}" | tail -n 2 | tr '\n' ' ' | cut -c1-400)" ;;
    esac
}

# Stops one daemon with SIGTERM and records its exit.
stop_daemon() {
    local name=$1 rc
    [[ -n ${dpid[$name]:-} ]] || return 0
    kill -TERM "${dpid[$name]}" 2> /dev/null
    wait "${dpid[$name]}"; rc=$?
    record_exit "$name" "$rc" stopped
    unset "dpid[$name]"
}

stop_daemons() {
    local name
    for name in "${!dpid[@]}"; do stop_daemon "$name"; done
}
