"""Connections to Weaviate: a server by URL, or an embedded server run from the locally built binary.

Embedded mode is weaviate-client's own (`connect_to_embedded`): it starts a Weaviate process
that lives as long as the client. The client downloads a release from GitHub unless a binary
is cached under the name it expects, so ragembed places a link to the binary that
`scripts/weaviate.sh build` compiled (`go install`) under that name: nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ragembed.embedders.cache import default_cache_dir
from ragembed.errors import InvalidInputError, MissingDependencyError, StoreError
from ragembed.stores import folders
from ragembed.stores.weaviate import embedded_owner

try:
    import weaviate
    from weaviate.classes.init import AdditionalConfig, Auth, Timeout
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError.for_extra("weaviate-client", "weaviate") from exc

# The server version scripts/weaviate.sh builds: the newest the Go module proxy serves here,
# with multi-vector (1.29+) and MUVERA (1.31+).
WEAVIATE_VERSION = "1.35.2"
API_KEY_ENV = "WEAVIATE_API_KEY"
GRPC_PORT_ENV = "WEAVIATE_GRPC_PORT"
BINARY_ENV = "RAGEMBED_WEAVIATE_BINARY"
EMBEDDED_NODE = "ragembed-embedded"
EMBEDDED_STORE = "weaviate-embedded"


def connect(
    url: str, *, api_key: str | None = None, grpc_port: int | None = None, timeout_s: float = 60.0
) -> weaviate.WeaviateClient:
    """A client for the server at `url` (http or https; gRPC on `grpc_port`, else
    $WEAVIATE_GRPC_PORT, else 50051 for http and 443 for https). The API key comes from
    `api_key` or $WEAVIATE_API_KEY. TLS certificates are verified (the client's default)."""
    options, where = _server_options(url, api_key, grpc_port, timeout_s)
    try:
        return weaviate.connect_to_custom(**options)
    except Exception as exc:
        raise _unreachable(where, exc) from None


async def connect_async(
    url: str, *, api_key: str | None = None, grpc_port: int | None = None, timeout_s: float = 60.0
) -> weaviate.WeaviateAsyncClient:
    """`connect`'s async twin: a connected WeaviateAsyncClient for the same server."""
    options, where = _server_options(url, api_key, grpc_port, timeout_s)
    client = weaviate.use_async_with_custom(**options)
    try:
        await client.connect()
    except Exception as exc:
        await client.close()
        raise _unreachable(where, exc) from None
    return client


def _server_options(
    url: str, api_key: str | None, grpc_port: int | None, timeout_s: float
) -> tuple[dict[str, Any], str]:
    """The weaviate-client connection arguments for `url`, and the server's name for errors."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(
            f"Weaviate URL {url!r} must look like http://host:8080 or https://host; "
            "for an embedded server use WeaviateStore.embedded(path)"
        )
    secure = parts.scheme == "https"
    key = api_key or os.environ.get(API_KEY_ENV) or None
    grpc_port = grpc_port or _port_from_environment() or (443 if secure else 50051)
    options = {
        "http_host": parts.hostname,
        "http_port": parts.port or (443 if secure else 80),
        "http_secure": secure,
        "grpc_host": parts.hostname,
        "grpc_port": grpc_port,
        "grpc_secure": secure,
        "auth_credentials": Auth.api_key(key) if key else None,
        "additional_config": AdditionalConfig(
            timeout=Timeout(init=min(timeout_s, 30), query=timeout_s, insert=timeout_s)
        ),
    }
    return options, f"the Weaviate server at {parts.scheme}://{parts.netloc}"


def _unreachable(where: str, exc: Exception) -> StoreError:
    # Only the class and message: the key is in the client's arguments, never in these.
    return StoreError(
        f"cannot reach {where}: {type(exc).__name__}: {str(exc)[:300]}. Start one with "
        "scripts/weaviate.sh start (or docker compose up weaviate), or check the URL, gRPC port "
        "and API key"
    )


def _port_from_environment() -> int | None:
    value = os.environ.get(GRPC_PORT_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise InvalidInputError(f"${GRPC_PORT_ENV}={value!r} is not a port number (1-65535)")
    return int(value)


def connect_embedded(
    data_dir: str | os.PathLike[str], *, timeout_s: float = 60.0, attempts: int = 3
) -> weaviate.WeaviateClient:
    """Start an embedded Weaviate with its data in `data_dir`; it stops when the client closes.

    Every port the server opens is chosen here, distinct and free when chosen. Another process
    can still take one before the server binds it, so a failed start is retried on new ports
    (`attempts` in all) before the error is raised."""
    data = Path(data_dir).expanduser()
    folders.check_can_open(data, EMBEDDED_STORE)  # Weaviate would write its files into any folder
    binary_dir = embedded_binary_dir()
    try:
        data.mkdir(parents=True, exist_ok=True)
        if folders.read_marker(data) is None:
            folders.write_marker(data, EMBEDDED_STORE, format=1)
    except OSError as exc:
        raise StoreError(
            f"cannot write the embedded Weaviate folder {data}: {exc}; Weaviate needs a writable data folder"
        ) from exc
    embedded_owner.claim(data)  # a server left running by a killed process is stopped first
    failure = ""
    for _ in range(attempts):
        http, grpc, gossip, raft = free_port_pairs(4)
        try:
            client = weaviate.connect_to_embedded(
                hostname="127.0.0.1",
                port=http,
                grpc_port=grpc,
                version=WEAVIATE_VERSION,
                persistence_data_path=str(data.resolve()),
                binary_path=str(binary_dir),
                environment_variables=_embedded_environment(gossip, raft),
                additional_config=AdditionalConfig(timeout=Timeout(init=30, query=timeout_s, insert=timeout_s)),
            )
        except Exception as exc:
            failure = f"{type(exc).__name__}: {str(exc)[:300]}"
            continue
        # weaviate-client keeps the server process on its private connection object; the pid is
        # what lets the next open stop a server this process leaves behind (embedded_owner).
        server = client._connection.embedded_db
        if server is not None and server.process is not None:
            embedded_owner.record(data, server.process.pid)
        return client
    raise StoreError(
        f"the embedded Weaviate server did not start with data in {data} ({attempts} tries on fresh "
        f"ports): {failure}. Is another embedded server using that folder? Close it first"
    )


def _embedded_environment(gossip_port: int, raft_port: int) -> dict[str, str]:
    # USE_INVERTED_SEARCHABLE=false, RAFT_TIMEOUTS_MULTIPLIER=1: see scripts/weaviate.sh (BM25 on
    # unflushed data in 1.35.2; start-up in 3 s, well inside the client's fixed 10 s wait).
    # The ports are set here because these variables win over the client's own choice, also
    # when the caller's environment carries them.
    return {
        "CLUSTER_ADVERTISE_ADDR": "127.0.0.1",
        "DISABLE_TELEMETRY": "true",
        "ENABLE_MODULES": "",
        "DEFAULT_VECTORIZER_MODULE": "none",
        "LOG_LEVEL": "error",
        "USE_INVERTED_SEARCHABLE": "false",
        "RAFT_TIMEOUTS_MULTIPLIER": "1",
        # The server needs data = gossip + 1, and dials Raft internal RPC at Raft + 1.
        "CLUSTER_GOSSIP_BIND_PORT": str(gossip_port),
        "CLUSTER_DATA_BIND_PORT": str(gossip_port + 1),
        "RAFT_PORT": str(raft_port),
        "RAFT_INTERNAL_RPC_PORT": str(raft_port + 1),
        # Loopback only, and no Go profiling server (it listens on every interface, on 6060
        # unless told otherwise, so a second server collided with the first).
        "CLUSTER_BIND_ADDR": "127.0.0.1",
        "GO_PROFILING_DISABLE": "true",
        # The cluster data port listens on every interface whatever the bind address: lock
        # it with a password nobody needs to know (one node talks to no other).
        "CLUSTER_BASIC_AUTH_USERNAME": "ragembed-node",
        "CLUSTER_BASIC_AUTH_PASSWORD": secrets.token_hex(32),
        # One node name for the folder: the client's default name follows its random port,
        # and a restarted node with a new name finds no Raft quorum in the stored state.
        "CLUSTER_HOSTNAME": EMBEDDED_NODE,
        "RAFT_JOIN": EMBEDDED_NODE,
    }


def free_port_pairs(count: int) -> list[int]:
    """`count` ports, each with its successor free too, all distinct: every socket stays bound
    until all are chosen, so no two calls to the OS can hand out the same port."""
    with ExitStack() as held:
        ports: list[int] = []
        while len(ports) < count:
            first = held.enter_context(socket.socket())
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            try:
                held.enter_context(socket.socket()).bind(("127.0.0.1", port + 1))
            except (OSError, OverflowError):  # taken, or past port 65535
                continue  # the first stays held, so the OS offers another next time
            ports.append(port)
        return ports


def server_binary() -> Path:
    """The weaviate-server built by scripts/weaviate.sh (or $RAGEMBED_WEAVIATE_BINARY)."""
    binary = Path(
        os.environ.get(BINARY_ENV) or default_cache_dir() / "weaviate" / f"v{WEAVIATE_VERSION}" / "weaviate-server"
    )
    if not binary.is_file():
        raise StoreError(
            f"no Weaviate server binary at {binary}; build it once with `scripts/weaviate.sh build` "
            f"(needs Go; about 10 minutes), or set {BINARY_ENV} to a weaviate-server {WEAVIATE_VERSION}"
        )
    return binary


def embedded_binary_dir() -> Path:
    """A folder where weaviate-client's embedded mode finds `server_binary()` under the file
    name it would download to (weaviate-v<version>-<sha256 of the version tag>)."""
    tag = f"v{WEAVIATE_VERSION}"
    folder = default_cache_dir() / "weaviate" / "embedded"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / f"weaviate-{tag}-{hashlib.sha256(tag.encode()).hexdigest()}"
    target = server_binary()
    if not link.is_symlink() or link.resolve() != target.resolve():
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    return folder
