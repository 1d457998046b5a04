#!/usr/bin/env bash
# A Qdrant server (or a cluster of them) on loopback, from a binary built from source once.
#
#   scripts/qdrant.sh build               the binary: $QDRANT_BIN if set, else the one cached under
#                                         ~/.cache/ragembed/qdrant/<version>, else ../shared/qdrant/bin/qdrant
#                                         if its sha256 matches its record (copied into the cache), else
#                                         built from ../shared/qdrant with cargo (about an hour on 2 cores;
#                                         needs protobuf-compiler and clang, installed with apt-get when root)
#   scripts/qdrant.sh start [DIR]         one node on 127.0.0.1 with its storage in DIR (default
#                                         .qdrant-data); waits until it is ready, prints
#                                         `http://127.0.0.1:PORT grpc PORT pid PID`
#   scripts/qdrant.sh stop [DIR]          stop it (SIGTERM; SIGKILL after 30 s)
#   scripts/qdrant.sh status [DIR]        `running http://127.0.0.1:PORT pid PID` or `stopped` (exit 1)
#   scripts/qdrant.sh cluster N           N nodes in distributed mode (the first with --uri, the others
#                                         --bootstrap it), each its own storage and ports, under
#                                         $RAGEMBED_QDRANT_DIR (default ~/.cache/ragembed/qdrant-cluster);
#                                         once every node is ready and sees N peers, prints one line per
#                                         node: `node K http://127.0.0.1:PORT pid PID`
#   scripts/qdrant.sh node-start K        start node K of that cluster again on its storage and ports
#                                         (after it was killed), waiting until it has rejoined
#   scripts/qdrant.sh cluster-stop        stop every node of that cluster
#
# Ports: QDRANT_HTTP_PORT, QDRANT_GRPC_PORT, QDRANT_P2P_PORT for `start` (default: free ones, chosen
# when it starts and kept in DIR/ports, so a restart on DIR reuses them). Everything listens on
# 127.0.0.1 (HTTP, gRPC and the p2p port all follow service.host). QDRANT_SERVER_API_KEY=KEY makes
# the server require that key (clients pass it as QDRANT_API_KEY or api_key=); it reaches the
# server in its environment only. Telemetry is off.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VERSION=v1.18.3
SHARED=${RAGEMBED_SHARED_DIR:-$HERE/../../shared}/qdrant
CACHE_ROOT=${RAGEMBED_CACHE_DIR:-$HOME/.cache/ragembed}
BIN_DIR="$CACHE_ROOT/qdrant/$VERSION"
CLUSTER_DIR=${RAGEMBED_QDRANT_DIR:-$CACHE_ROOT/qdrant-cluster}
PYTHON=${PYTHON:-python3}

binary() {
  if [ -n "${QDRANT_BIN:-}" ]; then echo "$QDRANT_BIN"; else echo "$BIN_DIR/qdrant"; fi
}

build() {
  local bin
  bin=$(binary)
  if [ -x "$bin" ]; then return; fi
  if [ -n "${QDRANT_BIN:-}" ]; then echo "QDRANT_BIN=$QDRANT_BIN is not an executable file" >&2; exit 1; fi
  mkdir -p "$BIN_DIR"
  if [ -f "$SHARED/bin/qdrant" ] && [ -f "$SHARED/bin/qdrant.sha256" ]; then
    local want got
    want=$(awk '{print $1}' "$SHARED/bin/qdrant.sha256")
    got=$(sha256sum "$SHARED/bin/qdrant" | awk '{print $1}')
    if [ "$want" = "$got" ]; then
      cp "$SHARED/bin/qdrant" "$bin.tmp" && chmod +x "$bin.tmp" && mv "$bin.tmp" "$bin"
      echo "qdrant $VERSION: copied the prebuilt binary from $SHARED/bin (sha256 $got)" >&2
      return
    fi
    echo "qdrant $VERSION: $SHARED/bin/qdrant does not match its sha256 record; building from source" >&2
  fi
  if [ ! -x "$SHARED/prepare-source.sh" ]; then
    echo "no Qdrant binary and no source at $SHARED; set QDRANT_BIN, or run a server with docker compose up -d qdrant" >&2
    exit 1
  fi
  if ! command -v protoc >/dev/null || ! command -v clang >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq protobuf-compiler clang >/dev/null
    else
      echo "building Qdrant needs protoc and clang: apt-get install protobuf-compiler clang" >&2; exit 1
    fi
  fi
  local src="$CACHE_ROOT/qdrant/src"
  echo "building qdrant $VERSION from $SHARED (once; about an hour on 2 cores)" >&2
  rm -rf "$src" && mkdir -p "$src"
  "$SHARED/prepare-source.sh" "$src" >&2
  (cd "$src/qdrant-1.18.3" && cargo build --locked --profile perf --bin qdrant -j "$(nproc)" >&2)
  strip -o "$bin.tmp" "$src/qdrant-1.18.3/target/perf/qdrant" && mv "$bin.tmp" "$bin"
  rm -rf "$src"
}

free_ports() {  # N distinct ports free on 127.0.0.1 now (each socket held until all are chosen)
  "$PYTHON" - "$1" <<'EOF'
import socket, sys
held = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in held:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
}

http_get() {  # prints the body of GET url, fails unless 2xx
  "$PYTHON" - "$1" "${QDRANT_SERVER_API_KEY:-}" <<'EOF'
import sys, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"api-key": sys.argv[2]} if sys.argv[2] else {})
with urllib.request.urlopen(request, timeout=3) as response:
    sys.stdout.write(response.read().decode())
EOF
}

peers() {  # how many peers the node at this HTTP port knows
  http_get "http://127.0.0.1:$1/cluster" 2>/dev/null |
    "$PYTHON" -c "import json, sys; print(len(json.load(sys.stdin)['result'].get('peers', {})))" 2>/dev/null || echo 0
}

# launch DIR HTTP GRPC P2P [qdrant arguments]: start one process, its storage in DIR
launch() {
  local dir=$1 http=$2 grpc=$3 p2p=$4
  shift 4
  local cluster=false
  if [ $# -gt 0 ]; then cluster=true; fi
  mkdir -p "$dir/storage" "$dir/snapshots"
  echo "$http $grpc $p2p" >"$dir/ports"
  local key=()  # an empty QDRANT__SERVICE__API_KEY would still switch authentication on
  if [ -n "${QDRANT_SERVER_API_KEY:-}" ]; then key=("QDRANT__SERVICE__API_KEY=$QDRANT_SERVER_API_KEY"); fi
  (
    cd "$dir"
    # `&` on the one command: $! is the server's own pid (env and nohup exec into it)
    env "${key[@]}" QDRANT__SERVICE__HOST=127.0.0.1 QDRANT__SERVICE__HTTP_PORT="$http" \
      QDRANT__SERVICE__GRPC_PORT="$grpc" QDRANT__CLUSTER__P2P__PORT="$p2p" QDRANT__CLUSTER__ENABLED=$cluster \
      QDRANT__STORAGE__STORAGE_PATH="$dir/storage" QDRANT__STORAGE__SNAPSHOTS_PATH="$dir/snapshots" \
      QDRANT__TELEMETRY_DISABLED=true QDRANT__LOG_LEVEL="${QDRANT_LOG_LEVEL:-WARN}" \
      nohup "$(binary)" "$@" >>"$dir/qdrant.log" 2>&1 &
    echo $! >"$dir/qdrant.pid"
  )
}

# wait_ready DIR [PEERS]: until /readyz answers (and the node sees PEERS peers), or fail
wait_ready() {
  local dir=$1 want=${2:-0} http
  http=$(cut -d' ' -f1 "$dir/ports")
  for _ in $(seq 1 240); do
    if ! running "$dir"; then
      echo "qdrant exited at start; see $dir/qdrant.log:" >&2; tail -5 "$dir/qdrant.log" >&2; return 1
    fi
    if http_get "http://127.0.0.1:$http/readyz" >/dev/null 2>&1 && { [ "$want" = 0 ] || [ "$(peers "$http")" -ge "$want" ]; }; then
      return 0
    fi
    sleep 0.5
  done
  echo "qdrant in $dir did not become ready in 120 s; see $dir/qdrant.log" >&2
  return 1
}

running() {  # alive and not a zombie (a killed server no process has reaped yet)
  [ -f "$1/qdrant.pid" ] && [ -r "/proc/$(cat "$1/qdrant.pid")/stat" ] &&
    [ "$(awk '{print $3}' "/proc/$(cat "$1/qdrant.pid")/stat")" != Z ]
}

start() {
  local dir=${1:-.qdrant-data}
  build
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if running "$dir"; then
    echo "qdrant already running in $dir (pid $(cat "$dir/qdrant.pid"))" >&2
  else
    local ports
    if [ -f "$dir/ports" ] && [ -z "${QDRANT_HTTP_PORT:-}" ]; then ports=$(cat "$dir/ports"); else ports=$(free_ports 3); fi
    read -r http grpc p2p <<<"$ports"
    launch "$dir" "${QDRANT_HTTP_PORT:-$http}" "${QDRANT_GRPC_PORT:-$grpc}" "${QDRANT_P2P_PORT:-$p2p}"
    wait_ready "$dir"
  fi
  read -r http grpc _ <"$dir/ports"
  echo "http://127.0.0.1:$http grpc $grpc pid $(cat "$dir/qdrant.pid")"
}

stop() {
  local dir=${1:-.qdrant-data}
  if running "$dir"; then
    local pid
    pid=$(cat "$dir/qdrant.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/qdrant.pid"
}

status() {
  local dir=${1:-.qdrant-data}
  if running "$dir"; then
    echo "running http://127.0.0.1:$(cut -d' ' -f1 "$dir/ports") pid $(cat "$dir/qdrant.pid")"
  else
    echo stopped; return 1
  fi
}

node_line() { echo "node $1 http://127.0.0.1:$(cut -d' ' -f1 "$CLUSTER_DIR/node$1/ports") pid $(cat "$CLUSTER_DIR/node$1/qdrant.pid")"; }

cluster() {
  local n=${1:?usage: cluster N}
  build
  cluster_stop
  rm -rf "$CLUSTER_DIR" && mkdir -p "$CLUSTER_DIR"
  local ports first_p2p
  read -r -a ports <<<"$(free_ports $((3 * n)))"
  for k in $(seq 1 "$n"); do
    local http=${ports[$((3 * k - 3))]} grpc=${ports[$((3 * k - 2))]} p2p=${ports[$((3 * k - 1))]}
    if [ "$k" = 1 ]; then
      first_p2p=$p2p
      launch "$CLUSTER_DIR/node1" "$http" "$grpc" "$p2p" --uri "http://127.0.0.1:$p2p"
      wait_ready "$CLUSTER_DIR/node1"
    else
      launch "$CLUSTER_DIR/node$k" "$http" "$grpc" "$p2p" --bootstrap "http://127.0.0.1:$first_p2p" \
        --uri "http://127.0.0.1:$p2p"
    fi
  done
  for k in $(seq 1 "$n"); do wait_ready "$CLUSTER_DIR/node$k" "$n"; done
  for k in $(seq 1 "$n"); do node_line "$k"; done
}

node_start() {  # a node restarted on its storage rejoins by itself (its peers are in its storage)
  local k=${1:?usage: node-start K} dir="$CLUSTER_DIR/node${1:-}"
  running "$dir" || { read -r http grpc p2p <"$dir/ports"; launch "$dir" "$http" "$grpc" "$p2p" --uri "http://127.0.0.1:$p2p"; }
  wait_ready "$dir" "$(ls -d "$CLUSTER_DIR"/node* | wc -l)"
  node_line "$k"
}

cluster_stop() {
  [ -d "$CLUSTER_DIR" ] || return 0
  for dir in "$CLUSTER_DIR"/node*; do [ -d "$dir" ] && stop "$dir"; done
  return 0
}

case "${1:-}" in
  build) build; binary ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  status) status "${2:-}" ;;
  cluster) cluster "${2:-}" ;;
  node-start) node_start "${2:-}" ;;
  cluster-stop) cluster_stop ;;
  *) echo "usage: $0 build | start [DIR] | stop [DIR] | status [DIR] | cluster N | node-start K | cluster-stop" >&2; exit 2 ;;
esac
