#!/usr/bin/env bash
# The full-turn load figures of BENCHMARKS.md (issue 13), before and after side by side.
#
#   benches/load/turn.sh REPS BIN_A [BIN_B ...]
#
# For each repetition, and within it for each binary in turn (so every binary runs under the
# same conditions, back to back): a fresh server on a fresh store, 20,000 callbacks from 2,000
# people, closed loop with 64 in flight, then open loop at 1,000/s; on the embedded store and
# on Redis. Then the echo baseline and the Python peer (wechatpy under gunicorn -w 2, only
# decrypts and echoes; `benches/peer/wechatpy_echo.py`) with the same closed loop, if
# PEER_GUNICORN points at gunicorn. One JSON line per run on stdout: label, store, mode and
# the `kaitong-dev load` report. Needs redis-server; uses ports 8080, 8090, 8091 and 6390.
# LOADER names the binary that drives the load and runs the echo baseline (default: BIN_A, as
# for builds before the workspace split; since then `kaitong-dev`, e.g.
# LOADER=target/release/kaitong-dev).
set -euo pipefail
REPS=$1; shift
LOADER=${LOADER:-$1} # the client is the same in every build
DIR=$(mktemp -d)
redis-server --port 6390 --save "" --appendonly no --daemonize yes --logfile "$DIR/redis.log" >/dev/null
trap 'redis-cli -p 6390 shutdown nosave >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT

wait_up() { for _ in $(seq 1 200); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "not up: $1" >&2; return 1; }

run_load() { # label store mode url pid
  local rate=(); [ "$3" = open ] && rate=(--rate 1000)
  local report
  report=$("$LOADER" load --url "$4" --requests 20000 --concurrency 64 "${rate[@]}" --pid "$5" | tr -d '\n ')
  echo "{\"label\":\"$1\",\"store\":\"$2\",\"mode\":\"$3\",\"report\":$report}"
}

for rep in $(seq 1 "$REPS"); do
  for bin in "$@"; do
    for store in embedded redis; do
      for mode in closed open; do
        rm -rf "$DIR/kt"; mkdir -p "$DIR/kt"
        if [ "$store" = redis ]; then url=redis://127.0.0.1:6390/; redis-cli -p 6390 flushall >/dev/null
        else url="embedded://$DIR/kt/k.db"; fi
        KAITONG_SERVER__LISTEN=127.0.0.1:8080 KAITONG_STORE__URL="$url" KAITONG_LOG__FILTER=warn \
          KAITONG_NOTIFY__ENABLED=false "$bin" serve >"$DIR/serve.log" 2>&1 &
        pid=$!
        wait_up http://127.0.0.1:8080/healthz
        run_load "$bin" "$store" "$mode" http://127.0.0.1:8080 "$pid"
        kill "$pid"; wait "$pid" || true
      done
    done
  done
  "$LOADER" echo-baseline --listen 127.0.0.1:8090 2>/dev/null &
  pid=$!; sleep 0.5
  run_load echo none closed http://127.0.0.1:8090 "$pid"
  kill "$pid"; wait "$pid" || true
  if [ -n "${PEER_GUNICORN:-}" ]; then
    "$PEER_GUNICORN" -w 2 -b 127.0.0.1:8091 --chdir "$(dirname "$0")/../peer" wechatpy_echo:app \
      >"$DIR/peer.log" 2>&1 &
    pid=$!; sleep 1.5
    run_load peer none closed http://127.0.0.1:8091 "$pid"
    kill "$pid"; wait "$pid" || true
  fi
done
