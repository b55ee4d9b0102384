# Daemon supervision for the faults campaign (sourced), on the harness's daemon_start. A daemon
# that exits is restarted, as systemd's Restart=always would; its exit is recorded: a
# documented code (0, 74, 75) is an outcome; death by a signal we did not send, or an exit
# systemd would not restart (65) or that names no I/O cause (78, …), is a violation.

declare -A dlaunch=() dlastpid=()
declare -A dexits=()   # "daemon:outcome" → count

# start_daemon NAME LAUNCHER: NAME is allocator or notifier; LAUNCHER is a function that sets
# DENV (extra VAR=value words, e.g. libfiu's) for this start. Output: BASE/logs/NAME.log.
start_daemon() {
    local name=$1 launcher=$2 kind saved=(${TORTURE_ENV[@]+"${TORTURE_ENV[@]}"})
    case $name in allocator*) kind=spool-allocator ;; *) kind=spool-notifier ;; esac
    dlaunch[$name]=$launcher
    DENV=()
    "$launcher" "$name"
    TORTURE_ENV+=(${DENV[@]+"${DENV[@]}"})
    TORTURE_LOG_LEVEL=notice daemon_start "$kind" "$name"
    TORTURE_ENV=(${saved[@]+"${saved[@]}"})
    dlastpid[$name]=$(cat "$TORTURE_BASE/pids/$name")
}

# A launcher without faults.
plain_env() { DENV=(); }

# Restarts every daemon of ours that exited, recording how it ended.
supervise() {
    local name status
    for name in "${!dlastpid[@]}"; do
        [[ -n ${dlastpid[$name]} ]] || continue
        daemon_pid "$name" > /dev/null && continue
        status=$(daemon_exit_status "${dlastpid[$name]}") || status=unknown
        record_exit "$name" "$status" unexpected
        start_daemon "$name" "${dlaunch[$name]}"
    done
}

record_exit() {
    local name=$1 rc=$2 how=$3 outcome
    if [[ $rc == unknown ]]; then outcome=unknown; else outcome=$(describe_status "$rc"); fi
    bump dexits "$name:$outcome"
    case $outcome in
        ok | code:74 | code:75) ;;
        signal:TERM) [[ $how == stopped ]] || violation "$name died by SIGTERM nobody sent" ;;
        *) violation "$name exited $outcome: $(grep -v '^\s*$' "$TORTURE_BASE/logs/$name.log" | tail -n 2 | tr '\n' ' ' | cut -c1-400)" ;;
    esac
}

# Stops our daemons with SIGTERM and records how each ended (a SIGTERM that arrives while a
# restarted daemon is still starting, before its handler is installed, kills it: recorded as
# signal:TERM, not a violation).
stop_daemons() {
    local name pid status
    for name in "${!dlastpid[@]}"; do
        [[ -n ${dlastpid[$name]} ]] || continue
        pid=${dlastpid[$name]}
        rm -f "$TORTURE_BASE/pids/$name"
        kill -TERM "$pid" 2> /dev/null
        torture_wait_pid "$pid" 30 > /dev/null; status=$?
        if ((status == 124)); then
            kill -KILL "$pid" 2> /dev/null
            violation "$name did not stop within 30 s of SIGTERM"
        else
            status=$(daemon_exit_status "$pid") || status=unknown
            record_exit "$name" "$status" stopped
        fi
        dlastpid[$name]=""
    done
}
