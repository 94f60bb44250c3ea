#!/usr/bin/env bash
# Monolith vs split under the user mix (docs/performance.md): throughput
# at saturation (16 users), latency at 100 tasks/s, and CPU seconds of the
# shop's processes per 1000 tasks. Needs `cargo build --release` first;
# uses ports 18080 and 18081.
set -u
B="$(cd "$(dirname "$0")/.." && pwd)/target/release/boutique"
cpu() { local t=0; for p in "$@"; do read -r -a f < /proc/$p/stat; t=$((t + f[13] + f[14])); done; echo $t; }
hz=$(getconf CLK_TCK)
run_load() { # label pids... ; uses $URL
  local label=$1; shift
  local before=$(cpu "$@")
  $B load --target $URL --duration 15s --users 16 --json > /tmp/perf-$label-sat.json
  local mid=$(cpu "$@")
  $B load --target $URL --duration 15s --rate 100 --json > /tmp/perf-$label-rate.json
  local after=$(cpu "$@")
  python3 - "$label" "$before" "$mid" "$after" "$hz" <<'PY'
import json,sys
label,b,m,a,hz=sys.argv[1],int(sys.argv[2]),int(sys.argv[3]),int(sys.argv[4]),int(sys.argv[5])
sat=json.load(open(f"/tmp/perf-{label}-sat.json")); rate=json.load(open(f"/tmp/perf-{label}-rate.json"))
def cpu_per_k(ticks, n): return ticks/hz/n*1000
print(f"{label}: saturation {sat['requests_per_second']:.0f} req/s (16 users), p50 {sat['latency_ms']['p50']:.2f} ms, p99 {sat['latency_ms']['p99']:.2f} ms, CPU {cpu_per_k(m-b, sat['requests']):.2f} s/1000 req, errors {sat['errors']}")
print(f"{label}: at 100 req/s: p50 {rate['latency_ms']['p50']:.2f} ms, p90 {rate['latency_ms']['p90']:.2f} ms, p99 {rate['latency_ms']['p99']:.2f} ms, p99.9 {rate['latency_ms']['p99.9']:.2f} ms, CPU {cpu_per_k(a-m, rate['requests']):.2f} s/1000 req, errors {rate['errors']}")
PY
}
rm -rf /tmp/perf-mono /tmp/perf-split; mkdir -p /tmp/perf-mono /tmp/perf-split
$B --set runtime.data_dir=/tmp/perf-mono --set modules.frontend.listen=127.0.0.1:18080 run > /tmp/perf-mono.log 2>&1 &
MONO=$!
until grep -q "shop open" /tmp/perf-mono.log; do sleep 0.2; done
URL=http://127.0.0.1:18080
run_load monolith $MONO
kill -TERM $MONO; wait $MONO
export BOUTIQUE_SECRET=perf-secret-0123456789abcdef
$B --config "$(cd "$(dirname "$0")/.." && pwd)/deploy/three-nodes.toml" --set runtime.data_dir=/tmp/perf-split --set modules.frontend.listen=127.0.0.1:18081 \
   --set nodes.web.listen=127.0.0.1:0 --set nodes.store.listen=127.0.0.1:0 --set nodes.pay.listen=127.0.0.1:0 up > /tmp/perf-split.log 2>&1 &
UP=$!
until grep -q "dashboard at" /tmp/perf-split.log; do sleep 0.2; done
PIDS=$(pgrep -f "run --node" | tr '\n' ' ')
URL=http://127.0.0.1:18081
run_load split $PIDS
kill -INT $UP; wait $UP
