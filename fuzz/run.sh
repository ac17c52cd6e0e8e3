#!/usr/bin/env bash
# Runs every grammar fuzz target for SECONDS each (default 600) on the stable toolchain and
# prints the run counts. Usage: fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for t in ${FUZZ_TARGETS:-datetime filters having sort_show_metrics scalars request_path}; do
  mkdir -p "fuzz/corpus/$t"
  [ -d "fuzz/seeds/$t" ] && cp -n fuzz/seeds/"$t"/* "fuzz/corpus/$t/" 2>/dev/null
  cargo fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -max_len=512 -rss_limit_mb=2048 -timeout=10 2>&1 \
    | tee "fuzz/$t.log" | grep -E "^#[0-9]+ +DONE|SUMMARY|panicked|ERROR" || true
done
