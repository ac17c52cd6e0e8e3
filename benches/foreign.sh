#!/usr/bin/env bash
# quiver vs DuckDB on TPC-H lineitem that another tool wrote (issue 17's first part):
#   benches/foreign.sh [--sf N] [--writer duckdb|pyarrow|polars|quiver] [--timestamps naive|utc]
#                      [--runs N] [--engines duckdb,datafusion,polars,chdb]
# tpchgen-cli (PyPI) generates lineitem; the writer flattens and writes it (see
# benches/foreign_write.py; `quiver` is `quiver tpch`'s own file, UTC timestamps only). Then
# Q1–Q6 run through quiver's HTTP API and in every engine (from PyPI, benches/engines.py),
# alternately, each answer compared with DuckDB's; the exit status is non-zero on a difference.
# Each table ends with the query's decompression floor (benches/floor.py) and its ratio to the fastest
# engine: above 0.5 no engine that decompresses the pages can be at half the fastest.
set -euo pipefail
cd "$(dirname "$0")/.."
SF=1 WRITER=duckdb TS=naive RUNS=5 ENGINES=duckdb,datafusion,polars,chdb
while [ $# -gt 0 ]; do
  case "$1" in
    --sf) SF=$2; shift 2 ;;
    --writer) WRITER=$2; shift 2 ;;
    --timestamps) TS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --engines) ENGINES=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
ROOT="$PWD"
BENCH="$ROOT/data/bench"
PORT="${QUIVER_BENCH_PORT:-9997}"
cargo build --release --quiet
QUIVER="$ROOT/target/release/quiver"
mkdir -p "$BENCH"
PID=""
. benches/serve.sh
bench_venv duckdb pyarrow polars tpchgen-cli datafusion chdb
if [ "$WRITER" = quiver ]; then
  PARQUET="$BENCH/lineitem_sf$SF.parquet"
  TS=utc
  [ -f "$PARQUET" ] || "$QUIVER" tpch --sf "$SF" --out "$PARQUET"
else
  RAW="$BENCH/tpchgen_sf$SF/lineitem.parquet"
  [ -f "$RAW" ] || .venv-bench/bin/tpchgen-cli parquet -s "$SF" --tables lineitem --output-dir "$BENCH/tpchgen_sf$SF" > /dev/null
  PARQUET="$BENCH/lineitem_sf${SF}_${WRITER}_${TS}.parquet"
  [ -f "$PARQUET" ] || "$PY" benches/foreign_write.py "$RAW" "$PARQUET" --writer "$WRITER" --timestamps "$TS"
fi
# Two servers: the engine alone (no decompressed chunk kept between queries), and the same
# with the chunk cache on (query.chunk_cache_bytes = 256 MiB, its default): work avoided.
CONF="$BENCH/config_foreign"
bench_config "$CONF" "$PARQUET" "$PORT"
WORK="$CONF"
start_quiver "$QUIVER" "$PORT" || exit 1
PLAIN_PID=$PID
CONF2="$BENCH/config_foreign_chunks"
bench_config "$CONF2" "$PARQUET" $((PORT + 1))
sed -i "s|^chunk_cache_bytes = .*|chunk_cache_bytes = 268435456|" "$CONF2/gateway.toml"
WORK="$CONF2"
start_quiver "$QUIVER" $((PORT + 1)) || exit 1
CACHED_PID=$PID
trap 'kill "$PLAIN_PID" "$CACHED_PID" 2>/dev/null' EXIT
"$PY" benches/compare.py --port "$PORT" --pid "$PLAIN_PID" --also "$((PORT + 1)):$CACHED_PID:quiver+chunks" \
  --parquet "$PARQUET" --duck-python "$PY" --runs "$RUNS" --timestamps "$TS" --engines "$ENGINES" \
  --floor --title "quiver vs other engines, lineitem SF $SF written by $WRITER, $TS timestamps"
