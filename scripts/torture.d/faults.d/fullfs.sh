# Parts 2 and 3 of the faults campaign: a really full file system (tmpfs -o size=) and one out
# of inodes (loop ext4 made with -N), under the spool of running daemons.

count_env() { DENV=("LD_PRELOAD=$SHIM" "FAULTCOUNT_LOG=$pf/enospc.log"); }

# Fills the mount $1 with a filler (part fulldisk: one file of zeros; part inodes: empty files)
# until the file system refuses.
fill_blocks() { dd if=/dev/zero of="$1/filler" bs=16k status=none 2> /dev/null; sync -f "$1" 2> /dev/null; :; }
fill_inodes() {
    local i=0
    mkdir -p "$1/filler" 2> /dev/null || return 0
    while : 2> /dev/null > "$1/filler/f$i"; do i=$((i + 1)); done
}

# A submit on the full file system; judges it. $1 = label (key suffix).
full_submit() {
    local n=$1 expect=$2
    rc=0
    ctl_counted "$pf/enospc.log" submit --customer "f$n@example.com" \
        --contact "f$n@example.com" --size S --from 2027-0$((1 + n % 9))-01 --months 1 \
        --idempotency-key "f$n" --json > "$pf/out" 2> "$pf/err" || rc=$?
    local line
    line=$(last_error_line "$pf/err")
    bump outcomes "$part-submit:$(describe_status "$rc")"
    if ((rc == 0)); then
        local id
        id=$(extract_id "$pf/out")
        echo "$id" >> "$pf/acked"
        printf '%s f%s f%s@example.com\n' "$id" "$n" "$n" >> "$pf/ledger"
        [[ $expect == full ]] && full_accepted=$((full_accepted + 1))
    elif [[ $expect == full && $rc == 75 && $line =~ (full|No space left) ]]; then
        refused=$((refused + 1))
        printf '%s %s\n' "$n" "$line" >> "$pf/refusals"
    else
        violation "$part: submit ($expect) exited $(describe_status "$rc"): ${line:0:300}"
    fi
}

# fs_campaign PART FILLER: on the current spool, whose root $TORTURE_SPOOL is the small file
# system's mount point.
fs_campaign() {
    part=$1
    local filler=$2 i id mnt=$TORTURE_SPOOL
    pf=$TORTURE_BASE
    spool_inventory S=4 M=4 L=4 > /dev/null || { violation "$part: cannot set up the spool"; return 1; }
    : > "$pf/ledger"; : > "$pf/enospc.log"; : > "$pf/refusals"
    refused=0; full_accepted=0
    start_daemon allocator count_env
    start_daemon notifier count_env
    local cycles k n=0 c pending
    cycles=$([[ $mode == quick ]] && echo 1 || echo 5)
    k=$([[ $mode == quick ]] && echo 4 || echo 12)
    for ((c = 1; c <= cycles; c++)); do
        # Requests in flight when the file system fills: the daemons meet the full disk too.
        for i in 1 2 3; do n=$((n + 1)); full_submit "$n" free; done
        "$filler" "$mnt"
        for ((i = 0; i < k; i++)); do
            n=$((n + 1)); full_submit "$n" full
            # What the spool freed (a claimed item, a removed staging file) is taken again.
            "$filler" "$mnt"
            supervise
        done
        # status and list still answer (never "no such request" because the disk is full).
        while read -r id _; do
            rc=0
            ctl status "$id" --json > "$pf/out" 2> "$pf/err" || rc=$?
            bump outcomes "$part-status:$(describe_status "$rc")"
            case $rc in 0 | 74 | 75) ;; *) violation "$part: status $id on a full spool exited $rc: $(last_error_line "$pf/err")" ;; esac
        done < <(tail -n 5 "$pf/acked")
        rc=0
        ctl list --json > /dev/null 2> "$pf/err" || rc=$?
        bump outcomes "$part-list:$(describe_status "$rc")"
        case $rc in 0 | 74 | 75) ;; *) violation "$part: list on a full spool exited $rc: $(last_error_line "$pf/err")" ;; esac
        # The daemons meet the full disk for a while; they keep running or exit 74/75 and restart.
        local until=$((SECONDS + $([[ $mode == quick ]] && echo 2 || echo 5)))
        while ((SECONDS < until)); do supervise; sleep 0.3; done
        rm -rf "$mnt/filler"
        # Space is back: everything resumes by itself.
        for i in 1 2; do n=$((n + 1)); full_submit "$n" free; done
        if ! pending=$(wait_terminal "$pf/ledger" "$([[ $mode == quick ]] && echo 40 || echo 120)"); then
            supervise
            violation "$part: not every acknowledged request decided after space returned (cycle $c): $(head -c 300 <<< "$pending" | tr '\n' ' ')"
        fi
    done
    log "$part: $cycles cycles: $refused submits refused with 75 on the full file system, $full_accepted accepted while full; all decided after space returned"
    ((refused > 0)) || violation "$part: no submit was refused on the full file system"
    stop_daemons
    local out line
    out=$(python3 "$here/faults.d/check_requests.py" "$pf/ledger" "$pf/cancels" "$mnt" --torn-ok < <(ctl list --json))
    [[ -z $out ]] || while IFS= read -r line; do
        if [[ $line == NOTE* ]]; then log "$part: ${line#NOTE }"; else violation "$part: $line"; fi
    done <<< "$out"
    settle_and_check
    full_enospc=$(grep -c ENOSPC "$pf/enospc.log")
}

part_full_disk() {
    spool_create --base "$work/fulldisk" breaker_high_water=100000 breaker_low_water=50000
    local mnt=$TORTURE_SPOOL
    mkdir -p "$mnt"
    mount -t tmpfs -o size=3m,mode=0770 tmpfs "$mnt" || { violation "fulldisk: cannot mount a tmpfs"; return; }
    mounts+=("$mnt")
    log "fulldisk: spool on a 3 MiB tmpfs"
    fs_campaign fulldisk fill_blocks
    fulldisk_summary=$full_enospc; fulldisk_refused=$refused
}

# The spool's layout takes about 600 inodes (256 bucket directories per queue): -N 1024 leaves
# a few hundred for the filler.
part_inodes() {
    spool_create --base "$work/inodes" breaker_high_water=100000 breaker_low_water=50000
    local mnt=$TORTURE_SPOOL img=$work/inodes/ext4.img
    mkdir -p "$mnt"
    truncate -s 32M "$img" && mkfs.ext4 -q -F -N 1024 "$img" \
        && mount -o loop "$img" "$mnt" || { violation "inodes: cannot mount a loop ext4"; return; }
    chmod 0770 "$mnt"
    mounts+=("$mnt")
    log "inodes: spool on a loop ext4 with $(df --output=itotal "$mnt" | tail -n 1 | tr -d ' ') inodes"
    fs_campaign inodes fill_inodes
    inodes_summary=$full_enospc; inodes_refused=$refused
}
