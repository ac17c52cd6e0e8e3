#!/usr/bin/env bash
# Property-based API testing with Schemathesis (PyPI) against quiver's own OpenAPI document
# and the embedded flights data: zero 5xx, every response matching the document.
#   tests/schemathesis.sh [MAX_EXAMPLES_PER_OPERATION]   (default 320: ~5,000+ requests)
# Checks: all but positive_data_acceptance — the document types every grammar parameter as a
# string, so "schema-valid" values such as metrics=0 are rightly rejected with a 400.
set -uo pipefail
cd "$(dirname "$0")/.."
N="${1:-320}"
PORT="${QUIVER_ST_PORT:-9995}"
[ -x .venv-schemathesis/bin/schemathesis ] || { python3 -m venv .venv-schemathesis && .venv-schemathesis/bin/pip install --quiet schemathesis; }
# QUIVER_PROFILE=debug reuses the test build (CI); the default is a release build.
PROFILE="${QUIVER_PROFILE:-release}"
if [ "$PROFILE" = debug ]; then cargo build --quiet; else cargo build --release --quiet; fi
JOBS=$(mktemp -d)
CONF=$(mktemp -d)
cp -r config/. "$CONF/"
sed -i "s|^dir = .*|dir = \"$JOBS\"|; s|^data_root = .*|data_root = \"$PWD\"|; s|^request_limit_per_user = .*|request_limit_per_user = -1|; s|^request_limit_global = .*|request_limit_global = -1|" "$CONF/gateway.toml"
"./target/$PROFILE/quiver" serve --config "$CONF" --port "$PORT" > "$JOBS/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$JOBS" "$CONF"' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/status" > /dev/null && break; sleep 0.2; done
.venv-schemathesis/bin/schemathesis run "http://127.0.0.1:$PORT/v1/openapi.json" --url "http://127.0.0.1:$PORT/v1" \
  -n "$N" --checks all --exclude-checks positive_data_acceptance --request-timeout 30 --generation-deterministic \
  --report ndjson --report-dir "$JOBS/report" | tee "$JOBS/out.txt"
status=${PIPESTATUS[0]}
true
if grep -q "panicked" "$JOBS/server.log"; then echo "the server panicked:"; grep -A5 panicked "$JOBS/server.log"; exit 1; fi
# The plain closing line: generated cases that passed and failed.
passed=$(grep -Eo '[0-9]+ passed' "$JOBS/out.txt" | tail -1 | grep -Eo '[0-9]+' || echo 0)
generated=$(grep -Eo '[0-9]+ generated' "$JOBS/out.txt" | tail -1 | grep -Eo '[0-9]+' || echo 0)
echo "schemathesis: $passed passed, $(( generated - passed )) failed"
exit $status
