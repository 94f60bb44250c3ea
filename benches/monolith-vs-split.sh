#!/usr/bin/env bash
# The shop under the user mix, as one process and as three (docs/performance.md).
#
#   cargo build --release
#   benches/monolith-vs-split.sh [OUT]            # OUT: default target/perf
#   cargo run -p boutique-plot -- target/perf docs/perf
#
# For each deployment (the monolith, `config.toml`; the split,
# `deploy/three-nodes.toml` under `boutique up`) it runs `boutique load`:
# closed loop with 1, 2, 4, 8, 16 and 32 users (throughput against
# concurrency; the most is saturation), then open loop at 100 tasks/s
# (latency at a moderate rate). Each run's JSON report lands in OUT as
# DEPLOYMENT-users-N.json or DEPLOYMENT-rate-R.json, which boutique-plot
# draws. The CPU time of the shop's processes during each run (read from
# /proc; the load generator, on the same cores, is not counted, nor is
# `boutique up`, which only relays the split's log lines: a split deployed
# for real runs without it) goes to OUT/cpu.tsv, and a summary table to
# stdout. A node that restarts during a run stops the script: its CPU
# could not be counted.
#
# Knobs (environment): DURATION (each run, default 15s), USERS (default
# "1 2 4 8 16 32"), RATE (default 100), BOUTIQUE_BIN (the binary, default
# target/release/boutique: to compare two builds). Every port is chosen by
# the system; the shop says where it listens.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${BOUTIQUE_BIN:-$root/target/release/boutique}"
out="${1:-$root/target/perf}"
duration="${DURATION:-15s}"
users_list="${USERS:-1 2 4 8 16 32}"
rate="${RATE:-100}"

[ -x "$bin" ] || { echo "no $bin: run 'cargo build --release' first" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed for the summary" >&2; exit 1; }
mkdir -p "$out"
work="$(mktemp -d)"
shop_pid=""
cleanup() {
    if [ -n "$shop_pid" ] && kill -0 "$shop_pid" 2>/dev/null; then
        kill -INT "$shop_pid" 2>/dev/null || true
        wait "$shop_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
hz=$(getconf CLK_TCK)
printf 'deployment\trun\tcpu_seconds\trequests\ttasks\n' > "$out/cpu.tsv"

# CPU ticks (user + system) of the given processes so far.
cpu_ticks() {
    local total=0 pid fields
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || {
            echo "process $pid has exited (did a node restart?): its CPU cannot be counted" >&2
            exit 1
        }
        # The fields after the command name (which may hold spaces) start
        # at the 3rd; utime is the 14th, stime the 15th.
        read -r -a fields <<< "$(sed 's/^.*) //' "/proc/$pid/stat")"
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}

# Waits until the shop's log says where it is open; prints the URL.
shop_url() {
    local log=$1 url=""
    for _ in $(seq 1 600); do
        url=$(grep -o 'shop open at http://[0-9.:]*' "$log" | head -1 | sed 's/shop open at //') || true
        [ -n "$url" ] && { echo "$url"; return 0; }
        kill -0 "$shop_pid" 2>/dev/null || { echo "the shop exited; its log:" >&2; cat "$log" >&2; return 1; }
        sleep 0.1
    done
    echo "the shop did not open within 60 s; its log:" >&2
    cat "$log" >&2
    return 1
}

# One load run: deployment, run name, load arguments; the shop's pids in $pids.
measure() {
    local deployment=$1 name=$2; shift 2
    local report="$out/$deployment-$name.json" before after
    before=$(cpu_ticks $pids)
    "$bin" load --target "$url" --duration "$duration" --json "$@" > "$report"
    after=$(cpu_ticks $pids)
    if [ "$deployment" = split ] && [ "$(pgrep -P "$shop_pid" | sort | tr '\n' ' ')" != "$(echo $pids | tr ' ' '\n' | sort | tr '\n' ' ')" ]; then
        echo "a node restarted during the $name run: its CPU cannot be counted" >&2
        exit 1
    fi
    python3 - "$report" "$deployment" "$name" "$((after - before))" "$hz" >> "$out/cpu.tsv" <<'PY'
import json, sys
report, deployment, name, ticks, hz = sys.argv[1:]
r = json.load(open(report))
print(f"{deployment}\t{name}\t{int(ticks) / int(hz):.2f}\t{r['requests']}\t{r['all_tasks']['tasks']}")
PY
    echo "  $deployment $name: $(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"{r['requests_per_second']:.0f} requests/s, p50 {r['latency_ms']['p50']:.2f} ms, p99 {r['latency_ms']['p99']:.2f} ms\")" "$report")"
}

run_all() {
    local deployment=$1 n
    for n in $users_list; do
        measure "$deployment" "users-$n" --users "$n"
    done
    measure "$deployment" "rate-$rate" --rate "$rate"
}

echo "== monolith (config.toml)"
"$bin" --set runtime.data_dir="$work/monolith" --set modules.frontend.listen=127.0.0.1:0 \
    run > "$work/monolith.log" 2>&1 &
shop_pid=$!
url=$(shop_url "$work/monolith.log")
pids=$shop_pid
run_all monolith
kill -INT "$shop_pid"; wait "$shop_pid" || true

echo "== split (deploy/three-nodes.toml, three processes under boutique up)"
export BOUTIQUE_SECRET="${BOUTIQUE_SECRET:-perf-secret-$(date +%s%N)}"
"$bin" --config "$root/deploy/three-nodes.toml" --set runtime.data_dir="$work/split" \
    --set modules.frontend.listen=127.0.0.1:0 \
    --set nodes.web.listen=127.0.0.1:0 --set nodes.store.listen=127.0.0.1:0 \
    --set nodes.pay.listen=127.0.0.1:0 up > "$work/split.log" 2>&1 &
shop_pid=$!
url=$(shop_url "$work/split.log")
pids=$(pgrep -P "$shop_pid" | tr '\n' ' ')
[ "$(echo $pids | wc -w)" -eq 3 ] || { echo "expected 3 nodes under boutique up, found: $pids" >&2; exit 1; }
run_all split
kill -INT "$shop_pid"; wait "$shop_pid" || true
shop_pid=""

echo "== summary (CPU seconds of the shop's processes per 1000 HTTP requests)"
python3 - "$out" "$rate" <<'PY'
import csv, json, sys
out, rate = sys.argv[1], sys.argv[2]
cpu = {(r["deployment"], r["run"]): r for r in csv.DictReader(open(f"{out}/cpu.tsv"), delimiter="\t")}
def per_k(d, run):
    r = cpu[(d, run)]
    return float(r["cpu_seconds"]) / int(r["requests"]) * 1000
runs = sorted({run for (_, run) in cpu}, key=lambda r: (r.startswith("rate"), int(float(r.split("-")[1]))))
print(f"{'run':<10} {'monolith req/s':>15} {'split req/s':>12} {'mono p50/p99 ms':>16} {'split p50/p99 ms':>17} {'CPU/1000 mono':>14} {'split':>6} {'ratio':>6}")
for run in runs:
    m = json.load(open(f"{out}/monolith-{run}.json")); s = json.load(open(f"{out}/split-{run}.json"))
    cm, cs = per_k("monolith", run), per_k("split", run)
    print(f"{run:<10} {m['requests_per_second']:>15.0f} {s['requests_per_second']:>12.0f} "
          f"{m['latency_ms']['p50']:>7.2f}/{m['latency_ms']['p99']:<8.2f} {s['latency_ms']['p50']:>8.2f}/{s['latency_ms']['p99']:<8.2f} "
          f"{cm:>14.3f} {cs:>6.3f} {cs / cm:>5.2f}x")
PY
