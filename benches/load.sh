#!/usr/bin/env bash
# A bounded load run of a small query on the embedded flights data, on loopback, with wrk
# (installed from Debian's packages if missing). Prints requests/s, p50 and p99.
#   benches/load.sh [SECONDS] [CONNECTIONS]   (runs 1 connection, then CONNECTIONS)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-15}"
CONNS="${2:-8}"
PORT="${QUIVER_LOAD_PORT:-9994}"
. benches/serve.sh
need_wrk
cargo build --release --quiet
scratch_config
unlimited
start_quiver ./target/release/quiver "$PORT" --log-format json
URL="http://127.0.0.1:$PORT/v1/data/flights/day/carrier?metrics=flights&dateTime=2013-06-01/2013-07-01"
curl -sf "$URL" > /dev/null
for c in 1 "$CONNS"; do
  wrk -t"$(( c < 2 ? 1 : 2 ))" -c"$c" -d"${SECS}s" --latency "$URL" > "$WORK/wrk.txt"
  awk -v c="$c" '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "%3d connection(s): %9s requests/s   p50 %8s   p99 %8s\n", c, r, p50, p99}' "$WORK/wrk.txt"
done
