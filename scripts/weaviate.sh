#!/usr/bin/env bash
# A single-node Weaviate server on loopback, built from source once and cached.
#
#   scripts/weaviate.sh build            go install weaviate-server (cached under ~/.cache/ragembed)
#   scripts/weaviate.sh start [DATA_DIR] build if needed, start on 127.0.0.1:8080 (gRPC 50051) with
#                                        persistence in DATA_DIR (default .weaviate-data), anonymous
#                                        access, no vectorizer modules; waits until it is ready
#   scripts/weaviate.sh stop [DATA_DIR]  stop the server started with that DATA_DIR
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

build() {
  if [ -x "$BIN" ]; then return; fi
  mkdir -p "$BIN_DIR"
  echo "building weaviate-server $VERSION into $BIN_DIR (once)" >&2
  GOBIN="$BIN_DIR" go install "github.com/weaviate/weaviate/cmd/weaviate-server@$VERSION"
}

ready() {
  local url="http://127.0.0.1:$HTTP_PORT/v1/.well-known/ready"
  if command -v curl >/dev/null; then curl -fsS "$url" >/dev/null 2>&1; return; fi
  python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url" >/dev/null 2>&1
}

start() {
  local data=${1:-.weaviate-data}
  build
  mkdir -p "$data"
  data=$(cd "$data" && pwd)
  if [ -f "$data/weaviate.pid" ] && kill -0 "$(cat "$data/weaviate.pid")" 2>/dev/null; then
    echo "weaviate already running (pid $(cat "$data/weaviate.pid"))" >&2; return
  fi
  local auth=(AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true)
  if [ -n "${WEAVIATE_SERVER_API_KEY:-}" ]; then
    auth=(AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=false AUTHENTICATION_APIKEY_ENABLED=true
          "AUTHENTICATION_APIKEY_ALLOWED_KEYS=$WEAVIATE_SERVER_API_KEY" AUTHENTICATION_APIKEY_USERS=ragembed
          AUTHORIZATION_ADMINLIST_ENABLED=true AUTHORIZATION_ADMINLIST_USERS=ragembed)
  fi
  local cluster_password
  cluster_password=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  env "${auth[@]}" CLUSTER_BASIC_AUTH_USERNAME=ragembed-node "CLUSTER_BASIC_AUTH_PASSWORD=$cluster_password" \
  PERSISTENCE_DATA_PATH="$data" DEFAULT_VECTORIZER_MODULE=none \
  ENABLE_MODULES="" CLUSTER_HOSTNAME=node1 RAFT_BOOTSTRAP_EXPECT=1 GRPC_PORT="$GRPC_PORT" DISABLE_TELEMETRY=true \
  CLUSTER_ADVERTISE_ADDR=127.0.0.1 RAFT_JOIN=node1 CLUSTER_GOSSIP_BIND_PORT=$GOSSIP_PORT CLUSTER_DATA_BIND_PORT=$((GOSSIP_PORT + 1)) RAFT_PORT=$RAFT_PORT RAFT_INTERNAL_RPC_PORT=$((RAFT_PORT + 1)) \
  CLUSTER_BIND_ADDR=127.0.0.1 GO_PROFILING_DISABLE=true \
  LOG_LEVEL=warning QUERY_DEFAULTS_LIMIT=25 USE_INVERTED_SEARCHABLE=${USE_INVERTED_SEARCHABLE:-false} RAFT_TIMEOUTS_MULTIPLIER=1 \
    nohup "$BIN" --host 127.0.0.1 --port "$HTTP_PORT" --scheme http >"$data/weaviate.log" 2>&1 &
  echo $! >"$data/weaviate.pid"
  for _ in $(seq 1 120); do
    if ! kill -0 "$(cat "$data/weaviate.pid")" 2>/dev/null; then
      echo "weaviate exited at start; see $data/weaviate.log:" >&2; tail -3 "$data/weaviate.log" >&2; exit 1
    fi
    if ready; then
      echo "weaviate $VERSION ready on http://127.0.0.1:$HTTP_PORT (gRPC $GRPC_PORT), data in $data" >&2; return
    fi
    sleep 1
  done
  echo "weaviate did not become ready in 120 s; see $data/weaviate.log" >&2
  exit 1
}

stop() {
  local data=${1:-.weaviate-data}
  if [ -f "$data/weaviate.pid" ]; then
    local pid
    pid=$(cat "$data/weaviate.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    rm -f "$data/weaviate.pid"
  fi
}

case "${1:-}" in
  build) build ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 build | start [DATA_DIR] | stop [DATA_DIR]" >&2; exit 2 ;;
esac
