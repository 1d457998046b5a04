"""A real Weaviate for the tests: $WEAVIATE_URL if set (e.g. docker compose up weaviate), else a
server started once per test session with scripts/weaviate.sh on free ports and a temporary data
folder, and stopped at exit. Without a built binary the Weaviate tests skip, saying how to build it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "weaviate.sh"


def binary_path() -> Path:
    from ragembed.stores.weaviate.connection import server_binary

    return server_binary()


def unavailable_reason() -> str | None:
    """Why no Weaviate server can be had here, or None."""
    if os.environ.get("WEAVIATE_URL"):
        return None
    try:
        binary_path()
    except Exception as exc:
        return f"no Weaviate to test against: {exc}"
    return None


@dataclass
class ScriptServer:
    """A server run by scripts/weaviate.sh, stoppable and restartable on the same data."""

    data: Path
    env: dict[str, str]

    @classmethod
    def on_free_ports(cls, data: Path) -> ScriptServer:
        from ragembed.stores.weaviate.connection import free_port_pairs

        http, grpc, gossip, raft = free_port_pairs(4)
        env = {
            **os.environ,
            "WEAVIATE_HTTP_PORT": str(http),
            "WEAVIATE_GRPC_PORT": str(grpc),
            "WEAVIATE_GOSSIP_PORT": str(gossip),
            "WEAVIATE_RAFT_PORT": str(raft),
        }
        return cls(data, env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['WEAVIATE_HTTP_PORT']}"

    @property
    def grpc_port(self) -> int:
        return int(self.env["WEAVIATE_GRPC_PORT"])

    def start(self) -> None:
        subprocess.run(
            ["bash", str(SCRIPT), "start", str(self.data)], env=self.env, check=True, capture_output=True, timeout=180
        )

    def stop(self) -> None:
        subprocess.run(
            ["bash", str(SCRIPT), "stop", str(self.data)], env=self.env, check=False, capture_output=True, timeout=60
        )


_session: tuple[str, int] | None = None


def session_server() -> tuple[str, int]:
    """(URL, gRPC port) of the session's Weaviate, started on first use."""
    global _session
    if _session is None:
        if os.environ.get("WEAVIATE_URL"):
            _session = os.environ["WEAVIATE_URL"], int(os.environ.get("WEAVIATE_GRPC_PORT", "50051"))
        else:
            data = Path(tempfile.mkdtemp(prefix="ragembed-weaviate-"))
            server = ScriptServer.on_free_ports(data)
            server.start()
            atexit.register(lambda: (server.stop(), shutil.rmtree(data, ignore_errors=True)))
            _session = server.url, server.grpc_port
    return _session


_embedded = None


def embedded_client():
    """One embedded Weaviate for the session (each test uses its own collection in it)."""
    global _embedded
    if _embedded is None:
        from ragembed.stores.weaviate.connection import connect_embedded

        data = Path(tempfile.mkdtemp(prefix="ragembed-weaviate-embedded-"))
        _embedded = connect_embedded(data)
        atexit.register(lambda: (_embedded.close(), shutil.rmtree(data, ignore_errors=True)))
    return _embedded


@dataclass
class Cluster:
    """A cluster from `scripts/weaviate.sh cluster N`, its nodes by number (1..N)."""

    folder: Path
    urls: dict = None  # node -> HTTP URL
    grpc_ports: dict = None
    pids: dict = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "RAGEMBED_WEAVIATE_DIR": str(self.folder)}

    def _script(self, *args: str) -> None:
        done = subprocess.run(["bash", str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"scripts/weaviate.sh {' '.join(args)} failed: {done.stderr[-2000:]}")
        for line in done.stdout.splitlines():
            _, number, url, _, grpc, _, pid = line.split()
            self.urls[int(number)], self.grpc_ports[int(number)], self.pids[int(number)] = url, int(grpc), int(pid)

    def start(self, nodes: int = 3) -> Cluster:
        self.urls, self.grpc_ports, self.pids = {}, {}, {}
        self._script("cluster", str(nodes))
        return self

    def kill(self, node: int) -> None:
        from qdrant_server import kill_and_wait

        kill_and_wait(self.pids[node])

    def restart(self, node: int) -> None:
        self._script("node-start", str(node))

    def stop(self) -> None:
        self._script("cluster-stop")
