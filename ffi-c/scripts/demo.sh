#!/usr/bin/env bash
# make demo: three kvnode replicas on loopback replicate a key-value store
# through phasecast's total order broadcast while kvbench drives them.
#
#   demo.sh [--quick] BIN_DIR
#
# Two runs of about 10 s. In the first a replica that is not the sequencer
# is killed (SIGKILL) part way; in the second the sequencer is. The report
# gives operations/s, latency, bytes and datagrams on the wire per
# operation, datagrams saved by aggregation, the view changes each replica
# saw, and checks that the surviving replicas hold identical stores: every
# survivor records its store digest at the same place of the total order
# (a SYNC marker) and the digests must be equal. It prints `identical`, or
# fails loudly.
#
# --quick (make test): one 3-second run without a kill, plus bad client
# input against a replica; same identical-store check.
set -euo pipefail

QUICK=0
if [[ ${1:-} == --quick ]]; then QUICK=1; shift; fi
BIN=${1:?usage: demo.sh [--quick] BIN_DIR}
KVNODE=$BIN/kvnode
KVBENCH=$BIN/kvbench
N=3
# Failure detection: 300 ms shows a quick fail-over; the no-crash check of
# `make test` allows 1 s so a loaded CI machine does not suspect a live replica.
FD_MS=300
((QUICK)) && FD_MS=1000
WORK=$(mktemp -d "${TMPDIR:-/tmp}/phasecast-demo.XXXXXX")
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "!! DEMO FAILED: $*"
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    for f in "$WORK"/*.log; do [[ -f $f ]] && { echo "--- $f"; tail -20 "$f"; }; done
    exit 1
}

# stat FILE KEY: a value of a kvnode stats file (key=value words).
sval() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p"; }
# field LINE KEY: a value of a KVBENCH line.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
thousands() { sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta' <<<"$1"; }

# run TITLE VICTIM(-1: none) DURATION_S KILL_AT_S PORT_BASE
run() {
    local title=$1 victim=$2 duration=$3 kill_at=$4 base=$5
    local udp=$base tcp=$((base + 100)) dir=$WORK/run$base
    mkdir -p "$dir"
    echo
    echo "== $title =="
    PIDS=()
    for ((i = 0; i < N; i++)); do
        "$KVNODE" --id $i --nodes $N --base-port $udp --client-port $tcp \
            --stats "$dir/$i.stats" --fd-ms "$FD_MS" 2>"$dir/$i.log" &
        PIDS+=($!)
    done
    for ((i = 0; i < N; i++)); do
        for _ in $(seq 100); do grep -q " up," "$dir/$i.log" 2>/dev/null && break; sleep 0.1; done
        grep -q " up," "$dir/$i.log" || fail "replica $i did not start"
    done
    cp "$dir"/*.log "$WORK"/ 2>/dev/null || true
    "$KVBENCH" --port $tcp --replicas $N --conns 16 --duration "$duration" --set-pct 50 \
        --value-size 32 --keys 10000 >"$dir/bench.out" 2>"$dir/bench.err" &
    local bench=$!
    if ((victim >= 0)); then
        sleep "$kill_at"
        { kill -9 "${PIDS[$victim]}" && wait "${PIDS[$victim]}"; } 2>/dev/null || true
        echo "killed replica $victim (SIGKILL) after ${kill_at} s"
    fi
    wait $bench || true
    local line
    line=$(grep '^KVBENCH' "$dir/bench.out") || fail "kvbench printed no result: $(cat "$dir/bench.err")"
    local survivors=()
    for ((i = 0; i < N; i++)); do ((i == victim)) || survivors+=($i); done

    # The check: a marker through the total order; every survivor's digest at it.
    local first=${survivors[0]} synced mark
    synced=$("$KVBENCH" --port $tcp --replica "$first" --cmd SYNC) || fail "SYNC got no reply"
    [[ $synced == SYNCED* ]] || fail "SYNC answered: $synced"
    mark=$(awk '{print $2}' <<<"$synced")
    local digests=() reply
    for s in "${survivors[@]}"; do
        reply=PENDING
        for _ in $(seq 50); do
            reply=$("$KVBENCH" --port $tcp --replica "$s" --cmd "HASH $mark") || fail "replica $s does not answer"
            [[ $reply == PENDING ]] || break
            sleep 0.1
        done
        [[ $reply == HASH* ]] || fail "replica $s never reached the marker: $reply"
        digests+=("$reply")
    done
    if ((QUICK)); then
        "$KVBENCH" --port $tcp --replica 1 --abuse >"$dir/abuse.out" 2>&1 ||
            fail "bad client input: $(cat "$dir/abuse.out")"
        tail -1 "$dir/abuse.out"
    fi
    sleep 0.3 # a last stats dump
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait "${PIDS[@]}" 2>/dev/null || true
    PIDS=()
    cp "$dir"/*.log "$WORK"/ 2>/dev/null || true

    # The report.
    local ops secs
    ops=$(field "$line" ops)
    secs=$(field "$line" duration_s)
    printf "kvbench: %s operations in %s s = %s ops/s (50 %% SET / 50 %% GET, 32-byte values, %d connections), latency p50 %s ms, p99 %s ms, p99.9 %s ms\n" \
        "$(thousands "$ops")" "$secs" "$(thousands "$(field "$line" ops_per_s)")" $((16 * N)) \
        "$(field "$line" p50_ms)" "$(field "$line" p99_ms)" "$(field "$line" p999_ms)"
    echo "         operations per second, second by second: $(sed -n 's/^kvbench: t=[0-9]*s \([0-9]*\) ops.*/\1/p' "$dir/bench.err" | paste -sd ' ' -)"
    if ((victim >= 0)); then
        echo "         $(field "$line" lost) requests in flight were lost with the killed replica's $(field "$line" conns_lost) connections; the others went on"
    fi
    local wb=0 wd=0 fr=0 rec=0 sets=0
    for ((i = 0; i < N; i++)); do
        [[ -f $dir/$i.stats ]] || continue
        wb=$((wb + $(sval "$dir/$i.stats" wire_bytes)))
        wd=$((wd + $(sval "$dir/$i.stats" wire_datagrams)))
        fr=$((fr + $(sval "$dir/$i.stats" frames_sent)))
        rec=$((rec + $(sval "$dir/$i.stats" records_sent)))
    done
    sets=$(field "$line" sets)
    awk -v wb="$wb" -v wd="$wd" -v ops="$ops" -v sets="$sets" 'BEGIN {
        printf "wire: %.1f MB in %d UDP datagrams (all replicas, every unicast copy): %.0f bytes and %.2f datagrams per operation (%.0f bytes per replicated SET)\n",
            wb / 1e6, wd, wb / ops, wd / ops, wb / (sets > 0 ? sets : 1) }'
    awk -v fr="$fr" -v rec="$rec" 'BEGIN {
        printf "aggregation: %d records left in %d datagrams: %d datagrams saved (%.1f records per datagram)\n",
            rec, fr, rec - fr, rec / (fr > 0 ? fr : 1) }'
    echo "views (from each replica's log):"
    for ((i = 0; i < N; i++)); do
        local v
        v=$(grep -E "view [0-9]+ installed|suspects" "$dir/$i.log" | sed 's/^kvnode [0-9]*: //' | paste -sd ';' - || true)
        if ((i == victim)); then
            echo "  replica $i (killed): ${v:-no view change before it died}"
        else
            echo "  replica $i: ${v:-no view change}"
        fi
    done
    if ((victim >= 0)); then
        for s in "${survivors[@]}"; do
            grep -qE "view [0-9]+ installed" "$dir/$s.log" || fail "replica $s never installed a view without $victim"
        done
    fi
    echo "stores at marker $mark (digest, keys, operations applied):"
    for k in "${!survivors[@]}"; do echo "  replica ${survivors[$k]}: ${digests[$k]#HASH $mark }"; done
    local ref=${digests[0]#HASH $mark }
    for d in "${digests[@]}"; do
        [[ ${d#HASH $mark } == "$ref" ]] || fail "the surviving replicas' stores differ"
    done
    echo "surviving replicas' stores: identical"
}

echo "phasecast demo: $N kvnode replicas (C, libphasecast) on 127.0.0.1, kvbench driving them"
if ((QUICK)); then
    run "short run: 3 replicas, 3 s, no crash" -1 3 0 47500
else
    run "run 1: replica 2 (a member, not the sequencer) is killed after 4 s" 2 10 4 47000
    run "run 2: replica 0 (the sequencer) is killed after 4 s" 0 10 4 47020
fi
echo
echo "demo OK"
