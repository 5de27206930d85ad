#!/usr/bin/env bash
# A 3-node raftbus cluster on 127.0.0.1 for the shared peers harness (its "broker" section):
#   bash bench/scripts/peers-cluster.sh start   # fresh data, 3 `raftbus node` processes; returns once 3 brokers are unfenced
#   bash bench/scripts/peers-cluster.sh pids    # the node PIDs, one a line (BROKER_PIDS_CMD)
#   bash bench/scripts/peers-cluster.sh addrs   # host:port,host:port,host:port (BROKER_ADDRS)
#   bash bench/scripts/peers-cluster.sh stop    # TERM each node by PID file, KILL after 10 s; keeps the data
#   bash bench/scripts/peers-cluster.sh wipe    # stop, then delete the data
# Uses the compiled code (run `npm run build` first). Processes are tracked by PID file and stopped
# by PID only, and only if /proc/PID/cmdline is still a raftbus node of this directory.
# Env: RAFTBUS_PEERS_DIR (default /tmp/raftbus-peers), RAFTBUS_CLIENT_PORTS (default "39091 39092 39093"),
#      RAFTBUS_PEER_PORTS (default "39191 39192 39193"), RAFTBUS_LOG_LEVEL (default warn),
#      RAFTBUS_NODE_FLAGS (extra node flags for every node, e.g. "--trace-gc" or "--cpu-prof --cpu-prof-dir DIR").
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DIR="${RAFTBUS_PEERS_DIR:-/tmp/raftbus-peers}"
read -r -a CLIENT_PORTS <<<"${RAFTBUS_CLIENT_PORTS:-39091 39092 39093}"
read -r -a PEER_PORTS <<<"${RAFTBUS_PEER_PORTS:-39191 39192 39193}"
CLI="$ROOT/dist/src/cli/main.js"

log() { printf '[%s] raftbus-peers: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

addrs() {
  local out="" port
  for port in "${CLIENT_PORTS[@]}"; do out="${out:+$out,}127.0.0.1:$port"; done
  echo "$out"
}

write_cluster_file() {
  local nodes="" i
  for i in 0 1 2; do
    nodes="$nodes${nodes:+,}{\"id\":$((i + 1)),\"host\":\"127.0.0.1\",\"peerPort\":${PEER_PORTS[$i]},\"clientPort\":${CLIENT_PORTS[$i]},\"roles\":[\"controller\",\"broker\"],\"dataDir\":\"node-$((i + 1))\"}"
  done
  printf '{"clusterId":"raftbus-peers","nodes":[%s]}\n' "$nodes" >"$DIR/cluster.json"
}

# is_ours PID: the process is a raftbus node started with this directory's cluster file.
is_ours() {
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true)"
  [[ "$cmdline" == *" $CLI node --cluster $DIR/cluster.json "* ]]
}

start() {
  [ -f "$CLI" ] || { log "no $CLI: run npm run build first"; exit 1; }
  local port id pid
  for port in "${CLIENT_PORTS[@]}" "${PEER_PORTS[@]}"; do port_free "$port" || { log "port $port is in use"; exit 1; }; done
  rm -rf "$DIR"
  mkdir -p "$DIR"
  write_cluster_file
  for id in 1 2 3; do
    # shellcheck disable=SC2086 # RAFTBUS_NODE_FLAGS is a list of flags
    setsid node ${RAFTBUS_NODE_FLAGS:-} "$CLI" node --cluster "$DIR/cluster.json" --id "$id" --log-level "${RAFTBUS_LOG_LEVEL:-warn}" >"$DIR/node-$id.log" 2>&1 </dev/null &
    echo $! >"$DIR/node-$id.pid"
  done
  # Ready: every broker registered and unfenced (the SDK's Admin asks the cluster).
  if ! node --input-type=module -e "
    import { waitForBrokers } from '$ROOT/dist/bench/lib/data-path.js';
    await waitForBrokers({ bootstrap: '$(addrs)'.split(','), count: 3, timeoutMs: 60000 });
  "; then
    log "the cluster did not become ready; log tails:"
    for id in 1 2 3; do tail -5 "$DIR/node-$id.log" >&2 || true; done
    stop
    exit 1
  fi
  log "3 nodes up at $(addrs) (pids $(pids | tr '\n' ' '))"
}

pids() {
  local f
  for f in "$DIR"/node-*.pid; do [ -f "$f" ] && cat "$f"; done
  return 0
}

stop() {
  local f pid i
  for f in "$DIR"/node-*.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null && is_ours "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for f in "$DIR"/node-*.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null && is_ours "$pid"; then log "pid $pid still alive after 10 s, KILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$f"
  done
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  pids) pids ;;
  addrs) addrs ;;
  wipe) stop; rm -rf "$DIR" ;;
  *) echo "usage: $0 start|stop|pids|addrs|wipe" >&2; exit 2 ;;
esac
