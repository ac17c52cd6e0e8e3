# Shared by the benchmark and proof scripts (source it from the repository root): a scratch
# copy of the embedded configuration and a quiver server on loopback.
#   scratch_config            -> WORK: a temporary config dir (jobs inside it), removed on exit
#   unlimited                 -> lifts the concurrency limits in WORK/gateway.toml
#   start_quiver BIN PORT ... -> serves WORK on PORT (extra args go to `serve`), waits until it
#                                answers /status and has warmed its dimension values (a
#                                background scan that would otherwise overlap measurements)
#   need_wrk                  -> installs wrk from Debian's packages when missing
#   bench_venv PKG...         -> PY: a Python in .venv-bench with the packages installed
#   bench_config CONF PARQUET PORT -> a lineitem configuration in CONF serving PARQUET

scratch_config() {
  WORK=$(mktemp -d)
  cp -r config/. "$WORK/"
  sed -i "s|^dir = .*|dir = \"$WORK/jobs\"|; s|^data_root = .*|data_root = \"$PWD\"|" "$WORK/gateway.toml"
  trap 'kill ${PID:-} 2>/dev/null; rm -rf "$WORK"' EXIT
}

unlimited() {
  sed -i "s|^request_limit_per_user = .*|request_limit_per_user = -1|; s|^request_limit_global = .*|request_limit_global = -1|" "$WORK/gateway.toml"
}

start_quiver() {
  local bin=$1 port=$2
  shift 2
  "$bin" serve --config "$WORK" --port "$port" "$@" > "$WORK/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/status" > /dev/null && grep -q "dimension values warmed" "$WORK/server.log" && return 0
    sleep 0.2
  done
  echo "quiver did not start; see $WORK/server.log" >&2
  return 1
}

need_wrk() {
  command -v wrk > /dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
}

bench_venv() {
  [ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
  .venv-bench/bin/pip install --quiet "$@"
  PY="$PWD/.venv-bench/bin/python"
}

bench_config() {
  local conf=$1 parquet=$2 port=$3
  rm -rf "$conf" && mkdir -p "$conf/tables"
  sed -e "s|^data_root = .*|data_root = \"$PWD\"|" -e "s|^dir = \"jobs\"|dir = \"$conf/jobs\"|" \
      -e "s|^port = .*|port = $port|" benches/lineitem/gateway.toml > "$conf/gateway.toml"
  sed -e "s|data/bench/lineitem_sf1.parquet|$parquet|" benches/lineitem/tables/lineitem.toml > "$conf/tables/lineitem.toml"
}
