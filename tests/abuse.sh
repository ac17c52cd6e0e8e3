#!/usr/bin/env bash
# Abuse, bounded: runs each attack of issue 12 against the release build and prints the
# figures. Every loop is limited in count and time (the whole run takes about two minutes).
#   tests/abuse.sh
# Prints: peak RSS under 20 and 40 unread heavy responses, time for the server to close 200
# half-open sockets and /status p99 meanwhile, /status, /metrics and /v1/tables p99 while 20
# heavy queries run (from 20 addresses behind a trusted proxy), and jobs accepted against
# refused when one client floods async submissions.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${QUIVER_ABUSE_PORT:-9991}"
. benches/serve.sh
cargo build --release --quiet
scratch_config
sed -i 's|^trusted_proxies = .*|trusted_proxies = ["127.0.0.1"]|' "$WORK/gateway.toml"
start_quiver target/release/quiver "$PORT"
python3 tests/abuse.py "$PORT" "$PID"
