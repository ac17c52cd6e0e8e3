#!/usr/bin/env bash
# The result cache and HTTP caching, measured (issue 15): wrk on a small cached query, a 304
# revalidation, and paging through a ~300,000-row answer; each with the cache off (before)
# and on (after, work avoided: the answer is computed once).
#   benches/cache.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
PORT="${QUIVER_CACHE_PORT:-9993}"
. benches/serve.sh
need_wrk
cargo build --release --quiet
SMALL="/v1/data/flights/day/carrier?metrics=flights&dateTime=2013-06-01/2013-07-01"
BIG="/v1/data/flights/hour/dest?metrics=flights&dateTime=2013-01-01/2014-01-01"
ms() { python3 -c "import sys; print(f'{float(sys.argv[1])*1000:.2f}')" "$1"; }
run() {
  local label=$1 max_bytes=$2
  scratch_config
  unlimited
  sed -i "s|^max_bytes = .*|max_bytes = $max_bytes|" "$WORK/gateway.toml"
  start_quiver ./target/release/quiver "$PORT" --log-format json
  local base="http://127.0.0.1:$PORT"
  curl -sf "$base$SMALL" > /dev/null
  wrk -t2 -c16 -d"${SECS}s" --latency "$base$SMALL" > "$WORK/wrk.txt"
  local rps p50
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
  p50=$(awk '/^ +50%/ {print $2}' "$WORK/wrk.txt")
  local etag
  etag=$(curl -sI "$base$SMALL" | awk 'tolower($1)=="etag:" {print $2}' | tr -d '\r')
  wrk -t1 -c1 -d"${SECS}s" --latency -H "If-None-Match: $etag" "$base$SMALL" > "$WORK/wrk304.txt"
  local p304 code
  p304=$(awk '/^ +50%/ {print $2}' "$WORK/wrk304.txt")
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$base$SMALL")
  local rows first rest
  rows=$(curl -s "$base$BIG&perPage=10000&page=1" | python3 -c "import json,sys; print(json.load(sys.stdin)['meta']['pagination']['numberOfResults'])")
  first=$(curl -s -o /dev/null -w '%{time_total}' "$base$BIG&perPage=10000&page=1&_=1")
  rest=$(for p in 2 3 4 5 6 7 8 9 10; do curl -s -o /dev/null -w '%{time_total}\n' "$base$BIG&perPage=10000&page=$p"; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '%-22s %10s req/s (p50 %s)   revalidation %s p50 %s   %s rows: page 1 %s ms, pages 2-10 median %s ms\n' \
    "$label" "$rps" "$p50" "$code" "$p304" "$rows" "$(ms "$first")" "$(ms "$rest")"
  kill "$PID"; wait "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
echo "small query: $SMALL (wrk, 16 connections, 2 threads, ${SECS} s)"
echo "paging: $BIG (perPage=10000)"
run "cache off (before)" 0
run "cache on (after)" 268435456
