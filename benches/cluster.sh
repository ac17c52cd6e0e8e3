#!/usr/bin/env bash
# The distributed backend's baseline: TPC-H lineitem Q1–Q6 through a gateway in front of a
# Ballista cluster (quiver scheduler + 1, then 2 executors with one task each, all on
# loopback), next to the same gateway on the local engine, and the overhead of a small query.
#   benches/cluster.sh [SF] [RUNS]
# Builds quiver in release with --features distributed, generates data/bench/lineitem_sfSF
# (tpchgen, sorted by ship date), installs DuckDB from PyPI into .venv-bench (compare.py checks
# every answer against it), and prints one table per setup. The result cache is off.
set -euo pipefail
cd "$(dirname "$0")/.."
SF="${1:-1}"
RUNS="${2:-5}"
ROOT="$PWD"
BENCH="$ROOT/data/bench"
PARQUET="$BENCH/lineitem_sf$SF.parquet"
PORT="${QUIVER_BENCH_PORT:-9996}"
SCHED=$((PORT + 100))

cargo build --release --quiet --features distributed
QUIVER="$ROOT/target/release/quiver"
mkdir -p "$BENCH"
[ -f "$PARQUET" ] || "$QUIVER" tpch --sf "$SF" --out "$PARQUET"

PID=""
PIDS=()
. benches/serve.sh
bench_venv duckdb
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; PID=""; }
stop_all() { stop; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop_all EXIT

LOCAL="$BENCH/config_cluster_local_sf$SF"
DIST="$BENCH/config_cluster_sf$SF"
bench_config "$LOCAL" "$PARQUET" "$PORT"
bench_config "$DIST" "$PARQUET" "$PORT"
sed -i 's|^grain = "day"|grain = "day"\nengine = "distributed"|' "$DIST/tables/lineitem.toml"
grep -q 'engine = "distributed"' "$DIST/tables/lineitem.toml"
printf '\n[distributed]\nscheduler = "df://127.0.0.1:%s"\ntimeout_seconds = 600\n' "$SCHED" >> "$DIST/gateway.toml"

SMALL="/v1/data/lineitem/all/?metrics=countOrder&dateTime=1995-03-01/1995-03-02"
small_query() {
  # Median of 30 sequential requests of a one-day count (the result cache is off).
  for _ in $(seq 1 30); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$PORT$SMALL"
  done | sort -n | awk '{a[NR]=$1} END {printf "small query (one-day count), median of 30: %.1f ms\n", a[int((NR+1)/2)]*1000}'
}

run() {
  local conf=$1 title=$2 json=$3
  shift 3
  WORK="$conf"
  start_quiver "$QUIVER" "$PORT" || exit 1
  "$PY" benches/compare.py --port "$PORT" --pid "$PID" --parquet "$PARQUET" --duck-python "$PY" --runs "$RUNS" \
    --title "$title" --json-out "$json" "$@" || status=1
  small_query
  stop
}

executor() {
  local port=$1
  "$QUIVER" executor --scheduler "127.0.0.1:$SCHED" --port "$port" --grpc-port $((port + 1)) \
    --concurrent-tasks 1 > "$DIST/executor-$port.log" 2>&1 &
  PIDS+=($!)
}

wait_executors() {
  for _ in $(seq 1 150); do
    n=$(curl -sf "http://127.0.0.1:$SCHED/api/executors" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null || echo 0)
    [ "$n" = "$1" ] && return 0
    sleep 0.2
  done
  echo "the scheduler never listed $1 executors" >&2
  exit 1
}

status=0
run "$LOCAL" "local engine, lineitem SF $SF" "$BENCH/cluster_local_sf$SF.json"

"$QUIVER" scheduler --port "$SCHED" > "$DIST/scheduler.log" 2>&1 &
PIDS+=($!)
executor $((SCHED + 1))
wait_executors 1
run "$DIST" "distributed, 1 executor x 1 task, lineitem SF $SF (vs local)" "$BENCH/cluster_1_sf$SF.json" \
  --baseline "$BENCH/cluster_local_sf$SF.json"
executor $((SCHED + 3))
wait_executors 2
run "$DIST" "distributed, 2 executors x 1 task, lineitem SF $SF (vs local)" "$BENCH/cluster_2_sf$SF.json" \
  --baseline "$BENCH/cluster_local_sf$SF.json"
exit $status
