#!/usr/bin/env bash
# Load with limits: 200 concurrent clients across 10 users for SECONDS (default 60) on
# loopback with wrk. Checks from /metrics, sampled every 100 ms during the run, that no user
# ever had more than request_limit_per_user (2) queries in flight and the gateway never more
# than request_limit_global (70), and that every non-2xx answer was an intended 429.
#   tests/load_limits.sh [SECONDS]
set -uo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
PORT="${QUIVER_LOADL_PORT:-9993}"
. benches/serve.sh
need_wrk
cargo build --release --quiet
scratch_config
{
  echo; echo "[auth]"; echo "enabled = true"
  for i in $(seq 1 10); do
    echo "[[auth.tokens]]"; echo "sha256 = \"$(printf 'token-%s' "$i" | sha256sum | cut -d' ' -f1)\""; echo "user = \"user$i\""; echo "roles = [\"all\"]"
  done
  echo "[auth.roles.all]"
} >> "$WORK/gateway.toml"
cat > "$WORK/users.lua" <<'LUA'
local queries = {
  "/v1/data/flights/day/carrier?metrics=flights&dateTime=2013-06-01/2013-07-01",
  "/v1/data/flights/month/origin/dest?metrics=flights,avgDepDelay&dateTime=2013-01-01/2014-01-01",
  "/v1/data/flights/week/carrier?metrics=uniqueTails&dateTime=2013-01-07/2013-12-30",
  "/v1/data/flights/all/tailnum?metrics=flights&dateTime=2013-01-01/2014-01-01&sort=flights|desc&count=5",
}
local n = 0
request = function()
  n = n + 1
  local user = math.random(1, 10)
  wrk.headers["Authorization"] = "Bearer token-" .. user
  return wrk.format("GET", queries[(n % #queries) + 1])
end
LUA
start_quiver ./target/release/quiver "$PORT" || exit 1
( end=$((SECONDS + SECS)); while [ $SECONDS -lt $end ]; do
    curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^quiver_in_flight_queries_max_per_user / {u=$2} /^quiver_in_flight_queries\{class="all"\}/ {g=$2} END {print u, g}'
    sleep 0.1
  done ) > "$WORK/samples.txt" &
SAMPLER=$!
wrk -t2 -c200 -d"${SECS}s" --latency -s "$WORK/users.lua" "http://127.0.0.1:$PORT" | tee "$WORK/wrk.txt"
wait $SAMPLER
curl -s "http://127.0.0.1:$PORT/metrics" > "$WORK/metrics.txt"
max_user=$(awk 'BEGIN{m=0} {if ($1>m) m=$1} END{print m}' "$WORK/samples.txt")
max_global=$(awk 'BEGIN{m=0} {if ($2>m) m=$2} END{print m}' "$WORK/samples.txt")
ok=$(awk -F'[{}" =,]+' '/^quiver_requests_total\{endpoint="data",status="200"\}/ {print $NF}' "$WORK/metrics.txt")
limited=$(awk '/^quiver_rate_limited_total / {print $2}' "$WORK/metrics.txt")
other=$(grep '^quiver_requests_total{endpoint="data"' "$WORK/metrics.txt" | grep -v 'status="200"' | grep -v 'status="429"' | awk '{s+=$2} END {print s+0}')
p99=$(awk '/^ +99%/ {print $2}' "$WORK/wrk.txt")
echo
echo "samples: $(wc -l < "$WORK/samples.txt"), max in flight per user: $max_user (limit 2), max in flight overall: $max_global (limit 70)"
echo "data answers: $ok x 200, $limited x 429, $other other; p99 $p99"
status=0
[ "${max_user:-0}" -le 2 ] || { echo "FAIL: a user exceeded the per-user limit"; status=1; }
[ "${max_global:-0}" -le 70 ] || { echo "FAIL: the global limit was exceeded"; status=1; }
[ "${other:-0}" -eq 0 ] || { echo "FAIL: errors besides 429"; grep '^quiver_requests_total{endpoint="data"' "$WORK/metrics.txt"; status=1; }
grep -q panicked "$WORK/server.log" && { echo "FAIL: the server panicked"; status=1; }
exit $status
