#!/usr/bin/env bash
# make ffi-bench: the C benchmarks of docs/BENCHMARKS.md, several runs each,
# medians printed.
#
#   bench.sh BIN_DIR [RUNS]
#
# tobbench, 3 members on loopback (one process each):
#   100-byte messages flat out, 10 kB messages flat out,
#   100-byte messages at 1000 msg/s per member (latency), under SCHED_RR
#   as corosync runs (tobbench's default) and under the default policy;
# kvbench against 3 kvnode replicas: 50 % SET / 50 % GET, 32-byte values.
# Each tobbench run must be complete on every member with equal order
# hashes, or the script fails.
set -euo pipefail
BIN=${1:?usage: bench.sh BIN_DIR [RUNS]}
RUNS=${2:-5}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/phasecast-bench.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

# tob NAME ARGS...: RUNS runs of 3 members; prints the medians.
tob() {
    local title=$1 name=$2
    shift 2
    : >"$OUT/$name.runs"
    for ((r = 0; r < RUNS; r++)); do
        local port=$((48000 + r * 10))
        for i in 0 1 2; do
            "$BIN/tobbench" --id $i --nodes 3 --base-port $port "$@" >"$OUT/$name.$r.$i" 2>"$OUT/$name.$r.$i.err" &
        done
        wait
        local hashes
        hashes=$(cat "$OUT/$name.$r".[012] | field order_hash | sort -u | wc -l)
        if [[ $hashes != 1 ]] || grep -q complete=0 "$OUT/$name.$r".[012]; then
            echo "$name run $r: incomplete or order hashes differ" >&2
            cat "$OUT/$name.$r".[012] >&2
            exit 1
        fi
        # The run's figure: the median over the members.
        local t p50 p99
        t=$(cat "$OUT/$name.$r".[012] | field msgs_per_s | median)
        p50=$(cat "$OUT/$name.$r".[012] | field p50_ms | median)
        p99=$(cat "$OUT/$name.$r".[012] | field p99_ms | median)
        echo "$t $p50 $p99" >>"$OUT/$name.runs"
        echo "  $title run $r: $t msgs/s, p50 $p50 ms, p99 $p99 ms" >&2
    done
    printf "%-28s msgs/s %8.0f   p50 %6.3f ms   p99 %6.3f ms   (median of %d runs: %s)\n" "$title" \
        "$(awk '{print $1}' "$OUT/$name.runs" | median)" \
        "$(awk '{print $2}' "$OUT/$name.runs" | median)" \
        "$(awk '{print $3}' "$OUT/$name.runs" | median)" "$RUNS" \
        "$(awk '{printf("%s%.0f", (NR > 1 ? " " : ""), $1)}' "$OUT/$name.runs")"
}

kv() {
    : >"$OUT/kv.runs"
    for ((r = 0; r < RUNS; r++)); do
        local udp=$((48500 + r * 10)) tcp=$((48600 + r * 10)) pids=()
        for i in 0 1 2; do
            "$BIN/kvnode" --id $i --nodes 3 --base-port $udp --client-port $tcp 2>"$OUT/kv.$r.$i.log" &
            pids+=($!)
        done
        for i in 0 1 2; do
            for _ in $(seq 100); do grep -q " up," "$OUT/kv.$r.$i.log" && break; sleep 0.1; done
        done
        "$BIN/kvbench" --port $tcp --replicas 3 --conns 16 --duration 10 --set-pct 50 --value-size 32 \
            >"$OUT/kv.$r" 2>/dev/null
        kill "${pids[@]}"
        wait "${pids[@]}" 2>/dev/null || true
        local l
        l=$(cat "$OUT/kv.$r")
        echo "$(field ops_per_s <<<"$l") $(field p50_ms <<<"$l") $(field p99_ms <<<"$l")" >>"$OUT/kv.runs"
        echo "  kvbench run $r: $l" >&2
    done
    printf "%-28s ops/s  %8.0f   p50 %6.3f ms   p99 %6.3f ms   (median of %d runs: %s)\n" \
        "kvbench 32 B, 50 % SET" \
        "$(awk '{print $1}' "$OUT/kv.runs" | median)" \
        "$(awk '{print $2}' "$OUT/kv.runs" | median)" \
        "$(awk '{print $3}' "$OUT/kv.runs" | median)" "$RUNS" \
        "$(awk '{printf("%s%.0f", (NR > 1 ? " " : ""), $1)}' "$OUT/kv.runs")"
}

echo "phasecast C benchmarks, 3 members on 127.0.0.1, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
tob "tobbench 100 B flat out" small --messages 300000 --size 100
tob "tobbench 10 kB flat out" large --messages 30000 --size 10000
# tobbench runs under SCHED_RR by default, as corosync does; the second
# latency row keeps the default policy, for comparison.
tob "tobbench 100 B 1000/s/member" latency --messages 10000 --size 100 --rate 1000
tob "  the same, --sched other" latency_other --messages 10000 --size 100 --rate 1000 --sched other
kv
