#!/usr/bin/env bash
# What row-level security costs on metadata (issue 13): a role with `filters` sees dimension
# values, cardinality and availability computed from its own rows. The first request per role
# and data snapshot scans; every later one is served from memory. Prints curl's total time.
#   benches/tenants.sh            (release build, embedded flights data)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
. benches/serve.sh
scratch_config
PORT=9994
hash() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
cat >> "$WORK/gateway.toml" <<TOML
[auth]
enabled = true
[[auth.tokens]]
sha256 = "$(hash t-admin)"
user = "ada"
roles = ["ops"]
[[auth.tokens]]
sha256 = "$(hash t-jfk)"
user = "jo"
roles = ["jfk"]
[auth.roles.ops]
admin = true
[auth.roles.jfk]
tables = ["flights"]
filters = "origin|id-in[JFK]"
TOML
# The status check in start_quiver has no token: that is fine, /status stays public.
start_quiver ./target/release/quiver "$PORT" || exit 1
t() { curl -s -o /dev/null -w "%{time_total}" -H "Authorization: Bearer t-$1" "http://127.0.0.1:$PORT$2"; }
ms() { python3 -c "print(f'{float(\"$1\")*1000:8.1f} ms')"; }
printf '%-48s %12s %12s %12s\n' "request" "jfk first" "jfk again" "admin"
for path in /v1/dimensions /v1/dimensions/flight/values /v1/dimensions/tailnum/values "/v1/dimensions/flight/values?filters=flight%7Cid-in%5B100,1,2%5D" /v1/tables/flights/day /v1/slices/flights_raw "/v1/data/flights/month/origin?metrics=flights&dateTime=2013/2014"; do
  a=$(t jfk "$path"); b=$(t jfk "$path"); c=$(t admin "$path")
  printf '%-48s %12s %12s %12s\n' "${path:0:48}" "$(ms "$a")" "$(ms "$b")" "$(ms "$c")"
done
