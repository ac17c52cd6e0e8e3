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
# QUIVER_PROFILE=debug reuses the binary `cargo test --all-features` built (CI): a plain `cargo
# build` would resolve other dependency features than the test build and rebuild DataFusion.
# The default is a release build.
PROFILE="${QUIVER_PROFILE:-release}"
if [ "$PROFILE" = debug ]; then
  [ -x target/debug/quiver ] || cargo build --quiet --all-features
else
  cargo build --release --quiet
fi
. benches/serve.sh
scratch_config
unlimited
start_quiver "./target/$PROFILE/quiver" "$PORT" || exit 1
.venv-schemathesis/bin/schemathesis run "http://127.0.0.1:$PORT/v1/openapi.json" --url "http://127.0.0.1:$PORT/v1" \
  -n "$N" --checks all --exclude-checks positive_data_acceptance --request-timeout 30 --generation-deterministic \
  --report ndjson --report-dir "$WORK/report" | tee "$WORK/out.txt"
status=${PIPESTATUS[0]}
if grep -q "panicked" "$WORK/server.log"; then echo "the server panicked:"; grep -A5 panicked "$WORK/server.log"; exit 1; fi
# The plain closing line: generated cases that passed and failed.
passed=$(grep -Eo '[0-9]+ passed' "$WORK/out.txt" | tail -1 | grep -Eo '[0-9]+' || echo 0)
generated=$(grep -Eo '[0-9]+ generated' "$WORK/out.txt" | tail -1 | grep -Eo '[0-9]+' || echo 0)
echo "schemathesis: $passed passed, $(( generated - passed )) failed"
exit $status
