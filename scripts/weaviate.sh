#!/usr/bin/env bash
# A single-node Weaviate server on loopback, built from source once and cached.
#
#   scripts/weaviate.sh build            go install weaviate-server (cached under ~/.cache/ragembed)
#   scripts/weaviate.sh start [DATA_DIR] build if needed, start on 127.0.0.1:8080 (gRPC 50051) with
#                                        persistence in DATA_DIR (default .weaviate-data), anonymous
#                                        access, no vectorizer modules; waits until it is ready
#   scripts/weaviate.sh stop [DATA_DIR]  stop the server started with that DATA_DIR
#   scripts/weaviate.sh cluster N        N nodes (node1..nodeN: one gossip/memberlist ring, one Raft
#                                        group of N voters) on free ports, data under
#                                        $RAGEMBED_WEAVIATE_DIR (default ~/.cache/ragembed/weaviate-cluster);
#                                        once every node is ready and sees N nodes, prints one line per
#                                        node: `node K http://127.0.0.1:PORT grpc PORT pid PID`
#   scripts/weaviate.sh node-start K     start node K of that cluster again on its data and ports
#   scripts/weaviate.sh cluster-stop     stop every node of that cluster
#
# WEAVIATE_HTTP_PORT, WEAVIATE_GRPC_PORT, WEAVIATE_GOSSIP_PORT and WEAVIATE_RAFT_PORT move the ports.
# HTTP, Raft and gossip listen on 127.0.0.1 only. Weaviate 1.35.2 has no setting for the address
# of gRPC or of the cluster data port (gossip + 1), so those listen on every interface: the data
# port gets a random basic-auth password per start (a single node never needs to share it), and
# for gRPC set WEAVIATE_SERVER_API_KEY (below) on a shared network, or firewall the port.
# Go profiling (pprof and debug endpoints, on every interface) is switched off.
# WEAVIATE_SERVER_API_KEY=KEY turns anonymous access off and requires that API key (clients pass
# it as WEAVIATE_API_KEY or api_key=); the key is handed to the server in its environment only.
# WEAVIATE_VERSION picks the version (default v1.35.2: multi-vector since 1.29, MUVERA since 1.31).
# USE_INVERTED_SEARCHABLE=false: keyword (BM25) search uses the map index, not BlockMax WAND,
# which in 1.35.2 drops recently written, not yet flushed documents from limited BM25 results
# (weaviate/weaviate#11780, fixed after 1.35.2).
# RAFT_TIMEOUTS_MULTIPLIER=1: a single node elects itself in about 1 s instead of 5 (start-up
# in 3 s instead of 9).
# The build needs only Go and the Go module proxy; it takes about 10 minutes on 2 cores the first time.
set -euo pipefail
VERSION=${WEAVIATE_VERSION:-v1.35.2}
CACHE_ROOT=${RAGEMBED_CACHE_DIR:-$HOME/.cache/ragembed}
BIN_DIR="$CACHE_ROOT/weaviate/$VERSION"
BIN="$BIN_DIR/weaviate-server"
HTTP_PORT=${WEAVIATE_HTTP_PORT:-8080}
GRPC_PORT=${WEAVIATE_GRPC_PORT:-50051}
# Cluster-internal ports (gossip, data = gossip + 1, Raft, Raft RPC = Raft + 1); change them with
# the two above to run a second server beside the first.
GOSSIP_PORT=${WEAVIATE_GOSSIP_PORT:-7946}
RAFT_PORT=${WEAVIATE_RAFT_PORT:-8300}
CLUSTER_DIR=${RAGEMBED_WEAVIATE_DIR:-$CACHE_ROOT/weaviate-cluster}
PYTHON=${PYTHON:-python3}

build() {
  if [ -x "$BIN" ]; then return; fi
  mkdir -p "$BIN_DIR"
  echo "building weaviate-server $VERSION into $BIN_DIR (once)" >&2
  GOBIN="$BIN_DIR" go install "github.com/weaviate/weaviate/cmd/weaviate-server@$VERSION"
}

ready() {  # ready [HTTP_PORT]
  local url="http://127.0.0.1:${1:-$HTTP_PORT}/v1/.well-known/ready"
  if command -v curl >/dev/null; then curl -fsS "$url" >/dev/null 2>&1; return; fi
  "$PYTHON" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url" >/dev/null 2>&1
}

# launch DATA NODE HTTP GRPC GOSSIP RAFT JOIN RAFT_JOIN EXPECT PASSWORD: one server process.
# The data port is GOSSIP + 1 and Raft's internal RPC port RAFT + 1.
launch() {
  local data=$1 node=$2 http=$3 grpc=$4 gossip=$5 raft=$6 join=$7 raft_join=$8 expect=$9 password=${10}
  local auth=(AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true)
  if [ -n "${WEAVIATE_SERVER_API_KEY:-}" ]; then
    auth=(AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=false AUTHENTICATION_APIKEY_ENABLED=true
          "AUTHENTICATION_APIKEY_ALLOWED_KEYS=$WEAVIATE_SERVER_API_KEY" AUTHENTICATION_APIKEY_USERS=ragembed
          AUTHORIZATION_ADMINLIST_ENABLED=true AUTHORIZATION_ADMINLIST_USERS=ragembed)
  fi
  echo "$http $grpc $gossip $raft" >"$data/ports"
  (
    cd "$data"
    env "${auth[@]}" CLUSTER_BASIC_AUTH_USERNAME=ragembed-node "CLUSTER_BASIC_AUTH_PASSWORD=$password" \
      PERSISTENCE_DATA_PATH="$data" DEFAULT_VECTORIZER_MODULE=none ENABLE_MODULES="" CLUSTER_HOSTNAME="$node" \
      RAFT_BOOTSTRAP_EXPECT="$expect" GRPC_PORT="$grpc" DISABLE_TELEMETRY=true CLUSTER_ADVERTISE_ADDR=127.0.0.1 \
      CLUSTER_JOIN="$join" RAFT_JOIN="$raft_join" CLUSTER_GOSSIP_BIND_PORT="$gossip" CLUSTER_DATA_BIND_PORT=$((gossip + 1)) \
      RAFT_PORT="$raft" RAFT_INTERNAL_RPC_PORT=$((raft + 1)) CLUSTER_BIND_ADDR=127.0.0.1 GO_PROFILING_DISABLE=true \
      LOG_LEVEL=warning QUERY_DEFAULTS_LIMIT=25 USE_INVERTED_SEARCHABLE="${USE_INVERTED_SEARCHABLE:-false}" \
      RAFT_TIMEOUTS_MULTIPLIER=1 CLUSTER_IN_LOCALHOST=true nohup "$BIN" --host 127.0.0.1 --port "$http" --scheme http >>"$data/weaviate.log" 2>&1 &
    echo $! >"$data/weaviate.pid"  # `&` on the one command: the server's own pid
  )
}

running() {  # alive and not a zombie (a killed server that no process has reaped yet)
  [ -f "$1/weaviate.pid" ] && [ -r "/proc/$(cat "$1/weaviate.pid")/stat" ] &&
    [ "$(awk '{print $3}' "/proc/$(cat "$1/weaviate.pid")/stat")" != Z ]
}

wait_ready() {  # wait_ready DATA [NODES]: ready, and (with NODES) seeing that many healthy nodes
  local data=$1 want=${2:-0} http
  http=$(cut -d' ' -f1 "$data/ports")
  for _ in $(seq 1 240); do
    if ! running "$data"; then
      echo "weaviate exited at start; see $data/weaviate.log:" >&2; tail -3 "$data/weaviate.log" >&2; return 1
    fi
    if ready "$http" && { [ "$want" = 0 ] || [ "$(healthy_nodes "$http")" -ge "$want" ]; }; then return 0; fi
    sleep 0.5
  done
  echo "weaviate in $data did not become ready in 120 s; see $data/weaviate.log" >&2
  return 1
}

healthy_nodes() {
  "$PYTHON" - "http://127.0.0.1:$1/v1/nodes" "${WEAVIATE_SERVER_API_KEY:-}" <<'EOF2' 2>/dev/null || echo 0
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"Authorization": f"Bearer {sys.argv[2]}"} if sys.argv[2] else {})
nodes = json.load(urllib.request.urlopen(request, timeout=3))["nodes"]
print(sum(n.get("status") == "HEALTHY" for n in nodes))
EOF2
}

start() {
  local data=${1:-.weaviate-data}
  build
  mkdir -p "$data"
  data=$(cd "$data" && pwd)
  if running "$data"; then
    echo "weaviate already running (pid $(cat "$data/weaviate.pid"))" >&2; return
  fi
  local password
  password=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  launch "$data" node1 "$HTTP_PORT" "$GRPC_PORT" "$GOSSIP_PORT" "$RAFT_PORT" "" "node1" 1 "$password"
  wait_ready "$data"
  echo "weaviate $VERSION ready on http://127.0.0.1:$HTTP_PORT (gRPC $GRPC_PORT), data in $data" >&2
}

free_port_pairs() {  # N ports, each with its successor free too, all distinct
  "$PYTHON" - "$1" <<'EOF2'
import socket, sys
held, ports = [], []
while len(ports) < int(sys.argv[1]):
    first = socket.socket(); first.bind(("127.0.0.1", 0)); held.append(first)
    port = first.getsockname()[1]
    try:
        second = socket.socket(); second.bind(("127.0.0.1", port + 1)); held.append(second)
    except (OSError, OverflowError):
        continue
    ports.append(port)
print(" ".join(map(str, ports)))
EOF2
}

listening() {  # until something accepts TCP connections on 127.0.0.1:PORT (60 s at most)
  "$PYTHON" - "$1" <<'EOF2'
import socket, sys, time
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
EOF2
}

node_line() {
  local data="$CLUSTER_DIR/node$1"
  echo "node $1 http://127.0.0.1:$(cut -d' ' -f1 "$data/ports") grpc $(cut -d' ' -f2 "$data/ports") pid $(cat "$data/weaviate.pid")"
}

# The cluster's settings, kept so that a node restarts with the same ones: node count, the
# first node's gossip port, the Raft join list, the data port password.
cluster() {
  local n=${1:?usage: cluster N}
  build
  cluster_stop
  rm -rf "$CLUSTER_DIR" && mkdir -p "$CLUSTER_DIR"
  local ports raft_join="" password
  read -r -a ports <<<"$(free_port_pairs $((4 * n)))"
  # RAFT_JOIN names each voter with its Raft port; with CLUSTER_IN_LOCALHOST each node finds the
  # others' internal RPC at Raft + 1 and their data port at gossip + 1 (one host, ports apart).
  for k in $(seq 1 "$n"); do raft_join="$raft_join${raft_join:+,}node$k:${ports[$((4 * k - 1))]}"; done
  password=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$n ${ports[2]} $raft_join $password" >"$CLUSTER_DIR/cluster"
  chmod 600 "$CLUSTER_DIR/cluster"
  for k in $(seq 1 "$n"); do
    mkdir -p "$CLUSTER_DIR/node$k"
    launch "$CLUSTER_DIR/node$k" "node$k" "${ports[$((4 * k - 4))]}" "${ports[$((4 * k - 3))]}" \
      "${ports[$((4 * k - 2))]}" "${ports[$((4 * k - 1))]}" "127.0.0.1:${ports[2]}" "$raft_join" "$n" "$password"
    # The others join node1's gossip ring at start, and give up if nobody listens there yet.
    if [ "$k" = 1 ]; then listening "${ports[2]}" || { echo "node1 never listened for gossip" >&2; exit 1; }; fi
  done
  for k in $(seq 1 "$n"); do wait_ready "$CLUSTER_DIR/node$k" "$n"; done
  for k in $(seq 1 "$n"); do node_line "$k"; done
}

node_start() {
  local k=${1:?usage: node-start K} data="$CLUSTER_DIR/node${1:-}" n first raft_join password
  read -r n first raft_join password <"$CLUSTER_DIR/cluster"
  if ! running "$data"; then
    read -r http grpc gossip raft <"$data/ports"
    launch "$data" "node$k" "$http" "$grpc" "$gossip" "$raft" "127.0.0.1:$first" "$raft_join" "$n" "$password"
  fi
  wait_ready "$data" "$n"
  node_line "$k"
}

cluster_stop() {
  [ -d "$CLUSTER_DIR" ] || return 0
  for data in "$CLUSTER_DIR"/node*; do [ -d "$data" ] && stop "$data"; done
  return 0
}

stop() {  # SIGTERM (Weaviate flushes and exits), SIGKILL if it has not gone in 30 s
  local data=${1:-.weaviate-data}
  if running "$data"; then
    local pid
    pid=$(cat "$data/weaviate.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do running "$data" || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$data/weaviate.pid"
}

case "${1:-}" in
  build) build ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  cluster) cluster "${2:-}" ;;
  node-start) node_start "${2:-}" ;;
  cluster-stop) cluster_stop ;;
  *) echo "usage: $0 build | start [DATA_DIR] | stop [DATA_DIR] | cluster N | node-start K | cluster-stop" >&2; exit 2 ;;
esac
