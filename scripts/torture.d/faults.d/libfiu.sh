# Part 1 of the faults campaign: libfiu at random in spoolctl and in the running daemons.

DAEMON_PROBS=(0.002 0.01 0.03)
CLI_PROBS=(0.05 0.2 0.5 1)
declare -A dfaults=()   # daemon → its current FIU enable commands
faults_on=1

# Launcher: the daemon under libfiu with fresh random faults (none once faults_on=0).
fiu_env() {
    local name=$1
    FAULTS=""
    ((faults_on)) && random_faults 2 "${DAEMON_PROBS[@]}"
    dfaults[$name]=$FAULTS
    DENV=("FIU_ENABLE=$FAULTS" "FIU_CTRL_FIFO=$p1/fiu" "FAULTCOUNT_LOG=$p1/faults.log"
          "LD_PRELOAD=$SHIM:$FIU_LIB/fiu_run_preload.so:$FIU_LIB/fiu_posix_preload.so")
}

# Disables a running daemon's failure points through its control FIFO (fiu-ctrl); with
# faults_on, enables new ones.
refault_daemon() {
    local name=$1 line args=()
    local pid
    pid=$(daemon_pid "$name") || return 0
    while IFS= read -r line; do
        [[ $line =~ name=([^,]*) ]] && args+=(-c "disable name=${BASH_REMATCH[1]}")
    done <<< "${dfaults[$name]}"
    FAULTS=""
    ((faults_on)) && random_faults 2 "${DAEMON_PROBS[@]}"
    while IFS= read -r line; do [[ -n $line ]] && args+=(-c "$line"); done <<< "$FAULTS"
    dfaults[$name]=$FAULTS
    ((${#args[@]})) || return 0
    timeout 5 fiu-ctrl -f "$p1/fiu" "${args[@]}" "$pid" > /dev/null 2>&1 \
        || { daemon_pid "$name" > /dev/null && violation "fiu-ctrl could not reach $name (pid $pid)"; }
}

# One spoolctl command under random faults. Sets rc, n_inj (faults injected in it), inj_kinds.
ctl_under_faults() {
    local count
    random_faults $((1 + RANDOM % 2)) "${CLI_PROBS[@]}"
    : > "$p1/op.log"
    rc=0
    ctl_fiu "$p1/op.log" "$@" > "$p1/out" 2> "$p1/err" || rc=$?
    n_inj=$(wc -l < "$p1/op.log")
    inj_kinds=$(awk '{print $2}' "$p1/op.log" | sort -u | tr '\n' ' ')
    cat "$p1/op.log" >> "$p1/faults.log"
}

# Judges a failed command's exit and message. $1 = command name.
judge_failure() {
    local what=$1 line
    line=$(last_error_line "$p1/err")
    printf '%s %s [%s] %s\n' "$what" "$rc" "$inj_kinds" "${line:0:240}" >> "$work/failures.txt"
    case $rc in
        73 | 74 | 75) ;;
        *) violation "$what exited $(describe_status "$rc") under [$inj_kinds] faults: ${line:0:300}"; return ;;
    esac
    if ((n_inj == 0)); then
        violation "$what exited $rc with no fault injected: ${line:0:300}"
    elif [[ -z $line ]]; then
        # Only acceptable when the faults hit write(2) itself (stderr could not be written).
        grep -q '^write ' "$p1/op.log" || violation "$what exited $rc without a message"
    elif [[ $line =~ SQLite\ error\ [0-9]+:\ (unable to open database file|disk I/O error|attempt\ to\ write\ a\ readonly\ database) ]]; then
        # SQLite's own words name the condition but neither the file nor the errno: noted. (An
        # open(2) failing with EIO makes SQLite open the file read-only, silently; the next
        # write then fails with SQLITE_READONLY.)
        bump outcomes "$what:sqlite-generic-message"
    elif ! [[ $line =~ (Input/output error|No space left on device|disk is full|file system is full|could not be written|could not read the file) ]]; then
        violation "$what exited $rc with an unclear message: ${line:0:300}"
    fi
    if [[ $inj_kinds == "ENOSPC " && $rc == 74 && ! $line =~ (could not be written|disk I/O error) ]]; then
        bump outcomes "$what:enospc-as-74"
    fi
}

extract_id() { sed -n 's/.*"id" *: *"\([0-9a-z]*\)".*/\1/p' "$1" | head -n 1; }

part_libfiu() {
    make_spool libfiu || { violation "libfiu: cannot set up the spool"; return; }
    p1=$TORTURE_BASE
    : > "$p1/faults.log"; : > "$p1/ledger"; : > "$p1/failed"
    local acked=() n=0 key size from months op id budget
    local sizes=(S M L) budget_s=$([[ $mode == quick ]] && echo 18 || echo 100000)
    local epoch_ops=$([[ $mode == quick ]] && echo 8 || echo 25)
    start_daemon allocator fiu_env
    start_daemon notifier fiu_env
    local t0=$SECONDS
    log "libfiu: injecting until $faults faults (seed $seed)"
    while (($(wc -l < "$p1/faults.log") < faults && n < ops_cap && SECONDS - t0 < budget_s)); do
        n=$((n + 1))
        supervise
        if ((n % epoch_ops == 0)); then refault_daemon allocator; refault_daemon notifier; fi
        op=$((RANDOM % 100))
        if ((op < 55 || ${#acked[@]} == 0)); then
            key=k$n; pick sizes; size=$REPLY; from=2027-$(printf %02d $((1 + RANDOM % 12)))-01; months=$((1 + RANDOM % 3))
            ctl_under_faults submit --customer "c$n@example.com" --contact "c$n@example.com" --size "$size" \
                --from "$from" --months "$months" --idempotency-key "$key" --json
            bump outcomes "submit:$(describe_status "$rc")"
            if ((rc == 0)); then
                id=$(extract_id "$p1/out")
                if [[ -z $id ]]; then violation "submit $key exited 0 without printing an id"; continue; fi
                acked+=("$id"); echo "$id" >> "$p1/acked"
                printf '%s %s c%s@example.com\n' "$id" "$key" "$n" >> "$p1/ledger"
            else
                judge_failure submit
                printf '%s %s %s %s %s\n' "$key" "$n" "$size" "$from" "$months" >> "$p1/failed"
            fi
        elif ((op < 70)); then
            id=${acked[RANDOM % ${#acked[@]}]}
            ctl_under_faults cancel "$id" --json
            bump outcomes "cancel:$(describe_status "$rc")"
            if ((rc == 0)); then grep -q cancel-requested "$p1/out" && echo "$id" >> "$p1/cancels"
            else judge_failure cancel; fi
        elif ((op < 88)); then
            id=${acked[RANDOM % ${#acked[@]}]}
            ctl_under_faults status "$id" --json
            bump outcomes "status:$(describe_status "$rc")"
            if ((rc == 0)); then [[ $(extract_id "$p1/out") == "$id" ]] || violation "status $id exited 0 without the request"
            else judge_failure status; fi
        elif ((op < 93)); then
            ctl_under_faults list --json
            bump outcomes "list:$(describe_status "$rc")"
            ((rc == 0)) || judge_failure list
        elif ((op < 97)); then
            ctl_under_faults reconcile
            bump outcomes "reconcile:$(describe_status "$rc")"
            ((rc == 0)) || judge_failure reconcile
        else
            ctl_under_faults queues
            bump outcomes "queues:$(describe_status "$rc")"
            ((rc == 0)) || judge_failure queues
        fi
    done
    log "libfiu: $n commands, $(wc -l < "$p1/faults.log") faults injected in $((SECONDS - t0)) s; faults stop now"
    faults_on=0
    refault_daemon allocator; refault_daemon notifier
    supervise

    # Every failed submit, retried with its key, succeeds and creates at most one request.
    local found=0 retried=0 line k m
    while read -r k m size from months; do
        retried=$((retried + 1))
        rc=0
        ctl submit --customer "c$m@example.com" --contact "c$m@example.com" --size "$size" \
            --from "$from" --months "$months" --idempotency-key "$k" --json > "$p1/out" 2> "$p1/err" || rc=$?
        if ((rc != 0)); then violation "retry of failed submit $k exited $rc: $(last_error_line "$p1/err")"; continue; fi
        grep -q '"created" *: *false' "$p1/out" && found=$((found + 1))
        id=$(extract_id "$p1/out")
        echo "$id" >> "$p1/acked"
        printf '%s %s c%s@example.com\n' "$id" "$k" "$m" >> "$p1/ledger"
    done < "$p1/failed"
    outcomes[submit:failed-but-queued]=$found
    log "libfiu: $retried failed submits retried with their keys; $found had been queued already"

    # The running daemons decide everything by themselves (no reconcile, no restart).
    local pending
    if ! pending=$(wait_terminal "$p1/ledger" "$([[ $mode == quick ]] && echo 40 || echo 120)"); then
        supervise
        violation "libfiu: not every acknowledged request decided by the running daemons after the faults stopped: $(head -c 300 <<< "$pending" | tr '\n' ' ')"
    fi
    stop_daemons
    check_libfiu_spool
}

# The spool of part 1 after the faults: one request per key, cancels honoured, nothing in
# corrupt/ or dead/ because of an I/O error, reconcile clean.
check_libfiu_spool() {
    local out
    local line
    out=$(python3 "$here/faults.d/check_requests.py" "$p1/ledger" "$p1/cancels" "$p1/spool" < <(ctl list --json))
    [[ -z $out ]] || while IFS= read -r line; do
        if [[ $line == NOTE* ]]; then log "libfiu: ${line#NOTE }"; bump outcomes "index-quarantined-after-eio"; else violation "libfiu: $line"; fi
    done <<< "$out"
    settle_and_check
    while read -r call code; do bump injected "$call $code"; done < "$p1/faults.log"
}
