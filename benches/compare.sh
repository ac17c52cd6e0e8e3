#!/usr/bin/env bash
# quiver vs DuckDB, side by side, on TPC-H lineitem at scale factor SF (default 1).
#   benches/compare.sh [SF] [RUNS]
# Builds quiver in release, generates data/bench/lineitem_sfSF.parquet (tpchgen, sorted by
# ship date), installs DuckDB from PyPI into .venv-bench, starts quiver and runs Q1–Q6 through
# HTTP and SQL alternately. Then builds a day rollup (returnFlag, lineStatus, shipMode,
# shipInstruct) and runs Q1–Q3 and Q6 again. Exits non-zero if any result differs.
set -euo pipefail
cd "$(dirname "$0")/.."
SF="${1:-1}"
RUNS="${2:-5}"
ROOT="$PWD"
BENCH="$ROOT/data/bench"
PARQUET="$BENCH/lineitem_sf$SF.parquet"
CONF="$BENCH/config_sf$SF"
PORT="${QUIVER_BENCH_PORT:-9997}"

cargo build --release --quiet
QUIVER="$ROOT/target/release/quiver"
mkdir -p "$BENCH"
[ -f "$PARQUET" ] || "$QUIVER" tpch --sf "$SF" --out "$PARQUET"

PID=""
. benches/serve.sh
bench_venv duckdb
# The bench config lives on in data/bench (the rollup appends its catalog entry there).
start() {
  WORK="$CONF"
  start_quiver "$QUIVER" "$PORT" || exit 1
}
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; PID=""; }
trap stop EXIT

bench_config "$CONF" "$PARQUET" "$PORT"
start
status=0
"$PY" benches/compare.py --port "$PORT" --pid "$PID" --parquet "$PARQUET" --duck-python "$PY" --runs "$RUNS" \
  --title "quiver vs DuckDB, lineitem SF $SF (raw rows)" --json-out "$BENCH/raw_sf$SF.json" || status=1
stop

"$QUIVER" rollup --config "$CONF" --table lineitem --grain day \
  --dimensions returnFlag,lineStatus,shipMode,shipInstruct --name lineitem_day \
  --output "data/bench/lineitem_sf${SF}_day.parquet" > /dev/null
start
"$PY" benches/compare.py --port "$PORT" --pid "$PID" --parquet "$PARQUET" --duck-python "$PY" --runs "$RUNS" --only Q1,Q2,Q3,Q6 \
  --title "with the day rollup (DuckDB still on raw rows)" --baseline "$BENCH/raw_sf$SF.json" || status=1
exit $status
