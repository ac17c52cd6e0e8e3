#!/usr/bin/env bash
# A bounded load run of a small query on the embedded flights data, on loopback, with wrk
# (installed from Debian's packages if missing). Prints requests/s, p50 and p99.
#   benches/load.sh [SECONDS] [CONNECTIONS]   (runs 1 connection, then CONNECTIONS)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-15}"
CONNS="${2:-8}"
PORT="${QUIVER_LOAD_PORT:-9994}"
command -v wrk > /dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet
CONF=$(mktemp -d)
cp -r config/. "$CONF/"
sed -i "s|^dir = .*|dir = \"$CONF/jobs\"|; s|^data_root = .*|data_root = \"$PWD\"|; s|^request_limit_per_user = .*|request_limit_per_user = -1|; s|^request_limit_global = .*|request_limit_global = -1|" "$CONF/gateway.toml"
./target/release/quiver serve --config "$CONF" --port "$PORT" --log-format json > "$CONF/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$CONF"' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/status" > /dev/null && break; sleep 0.2; done
URL="http://127.0.0.1:$PORT/v1/data/flights/day/carrier?metrics=flights&dateTime=2013-06-01/2013-07-01"
curl -sf "$URL" > /dev/null
RUST_LOG=warn true
for c in 1 "$CONNS"; do
  wrk -t"$(( c < 2 ? 1 : 2 ))" -c"$c" -d"${SECS}s" --latency "$URL" > "$CONF/wrk.txt"
  awk -v c="$c" '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "%3d connection(s): %9s requests/s   p50 %8s   p99 %8s\n", c, r, p50, p99}' "$CONF/wrk.txt"
done
