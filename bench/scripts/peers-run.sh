#!/usr/bin/env bash
# The shared peers harness with NATS JetStream and raftbus in one run, so their rows compare:
#   npm run build && bash bench/scripts/peers-run.sh          # ≈15 min with REPS=3
# 1. Copies the harness (PEERS_DIR, default /work/shared/peers) to PEERS_COPY (default
#    /tmp/peers-harness) and installs its npm dependencies there: the shared directory is never
#    written to (run-all.sh would otherwise `npm ci` into it).
# 2. Runs its `nats` and `broker` sections in one run-all.sh invocation; the broker section drives
#    our cluster (bench/scripts/peers-cluster.sh) through dist/bench/peers-adapter.js with the SDK
#    as users call it (RAFTBUS_PRODUCE=sdk: lingerMs 0, default batching), row `raftbus-sdk`.
# 3. Right after, on a fresh cluster, the per-record variant (RAFTBUS_PRODUCE=per-record: one
#    record per Produce request, like the harness's null broker), row `raftbus-per-record`
#    (produce-sync and produce-pipelined only).
# 4. Writes OUT/SUMMARY.md (the harness's summarize.mjs over every JSON of OUT).
# Env: REPS (default 3), OUT (default bench/results/peers-<timestamp>), PEERS_DIR, PEERS_COPY,
#      SKIP_PER_RECORD=1, and the harness's own (NATS_*, PEERS_RUN_DIR, ...).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-/work/shared/peers}"
PEERS_COPY="${PEERS_COPY:-/tmp/peers-harness}"
REPS="${REPS:-3}"
OUT="${OUT:-$ROOT/bench/results/peers-$(date +%Y%m%dT%H%M%S)}"
CLUSTER="bash $ROOT/bench/scripts/peers-cluster.sh"
ADAPTER="$ROOT/dist/bench/peers-adapter.js"

log() { printf '[%s] peers-run: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[ -f "$ADAPTER" ] || { log "no $ADAPTER: run npm run build first"; exit 1; }
mkdir -p "$PEERS_COPY" "$OUT"
OUT="$(cd "$OUT" && pwd)"
# Refresh the copy's sources from the shared harness; keep its node_modules.
tar -C "$PEERS_DIR" --exclude=node_modules --exclude=results -cf - . | tar -C "$PEERS_COPY" -xf -
chmod -R u+w "$PEERS_COPY"
[ -d "$PEERS_COPY/node_modules/nats" ] || (cd "$PEERS_COPY" && npm ci --no-audit --no-fund >"$OUT/npm-ci.log" 2>&1)

export BROKER_ADDRS BROKER_ADAPTER BROKER_START BROKER_STOP BROKER_PIDS_CMD BROKER_LABEL
BROKER_ADDRS="$($CLUSTER addrs)"
BROKER_ADAPTER="$ADAPTER"
BROKER_START="$CLUSTER start"
BROKER_STOP="$CLUSTER wipe"
BROKER_PIDS_CMD="$CLUSTER pids"
BROKER_LABEL=raftbus-sdk
log "harness sections nats + broker, REPS=$REPS, OUT=$OUT"
RAFTBUS_PRODUCE=sdk OUT="$OUT" REPS="$REPS" bash "$PEERS_COPY/run-all.sh" nats broker >"$OUT/run-all.stdout" 2>"$OUT/run-all.log"

if [ "${SKIP_PER_RECORD:-0}" != 1 ]; then
  log "raftbus per-record variant"
  trap '$CLUSTER wipe || true' EXIT
  $CLUSTER start
  (cd "$PEERS_COPY" && RAFTBUS_PRODUCE=per-record node bench/run.mjs --adapter "$ADAPTER" --label raftbus-per-record --reps "$REPS" \
    --workloads produce-sync,produce-pipelined --watch-pids "$($CLUSTER pids | tr '\n' ,)" \
    --out "$OUT/log-broker-per-record.json" >/dev/null 2>>"$OUT/run-all.log")
  $CLUSTER wipe
  trap - EXIT
fi

node "$PEERS_COPY/bench/summarize.mjs" "$OUT" >"$OUT/SUMMARY.md"
cat "$OUT/SUMMARY.md"
log "results in $OUT"
