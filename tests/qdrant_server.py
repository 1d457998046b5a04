"""A real Qdrant server for the tests: $QDRANT_URL if set (e.g. docker compose up qdrant; gRPC on
$QDRANT_GRPC_PORT, else 6334), else one started once per test session by scripts/qdrant.sh on free
ports with a temporary storage folder, and stopped at exit; and, for the cluster tests, a 3-node
cluster from `scripts/qdrant.sh cluster 3`. Without a binary (scripts/qdrant.sh build makes one)
the server tests skip and say how to get one.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "qdrant.sh"


def script(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPT), *args], env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/qdrant.sh {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def unavailable_reason() -> str | None:
    """Why no Qdrant server can be had here, or None."""
    if os.environ.get("QDRANT_URL"):
        return None
    try:
        script("build", timeout=120)  # finds or copies a binary; never compiles inside a test run
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return f"no Qdrant server to test against ({str(exc)[-300:]}); run scripts/qdrant.sh build"
    return None


@dataclass
class ScriptServer:
    """One node run by scripts/qdrant.sh, stoppable, killable and restartable on its storage."""

    data: Path
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""
    grpc_port: int = 0
    pid: int = 0

    def start(self) -> ScriptServer:
        url, _, grpc, _, pid = script("start", str(self.data), env=self.env).split()
        self.url, self.grpc_port, self.pid = url, int(grpc), int(pid)
        return self

    def stop(self) -> None:
        script("stop", str(self.data), env=self.env)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would, and wait until the process is gone."""
        kill_and_wait(self.pid)


def kill_and_wait(pid: int, timeout_s: float = 30.0) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state == "Z":  # dead; its parent (init here) has not reaped it yet
            return
        time.sleep(0.05)
    raise TimeoutError(f"process {pid} did not die after SIGKILL")


_session: tuple[str, int] | None = None


def _stop_session_server(server: ScriptServer) -> None:
    """Stop the session's server and remove its storage; a server that died during the run
    leaves the end of its log on stderr first, so the cause is not lost with the folder."""
    if not Path(f"/proc/{server.pid}").exists():
        log = server.data / "qdrant.log"
        tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else []
        print("the session's Qdrant server died during the run; the end of its log:", *tail, sep="\n", file=sys.stderr)
    server.stop()
    shutil.rmtree(server.data, ignore_errors=True)


def session_server() -> tuple[str, int]:
    """(URL, gRPC port) of the session's Qdrant server, started on first use."""
    global _session
    if _session is None:
        if os.environ.get("QDRANT_URL"):
            _session = os.environ["QDRANT_URL"], int(os.environ.get("QDRANT_GRPC_PORT", "6334"))
        else:
            data = Path(tempfile.mkdtemp(prefix="ragembed-qdrant-"))
            server = ScriptServer(data).start()
            atexit.register(_stop_session_server, server)
            _session = server.url, server.grpc_port
    return _session


@dataclass
class Cluster:
    """A cluster from `scripts/qdrant.sh cluster N`, its nodes by number (1..N)."""

    folder: Path
    urls: dict[int, str] = field(default_factory=dict)
    pids: dict[int, int] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {"RAGEMBED_QDRANT_DIR": str(self.folder)}

    def _read(self, lines: str) -> None:
        for line in lines.splitlines():
            _, number, url, _, pid = line.split()
            self.urls[int(number)], self.pids[int(number)] = url, int(pid)

    def start(self, nodes: int = 3) -> Cluster:
        self._read(script("cluster", str(nodes), env=self.env, timeout=600))
        return self

    def kill(self, node: int) -> None:
        kill_and_wait(self.pids[node])

    def restart(self, node: int) -> None:
        """Start a killed node again on its storage; returns once it sees every peer."""
        self._read(script("node-start", str(node), env=self.env, timeout=600))

    def stop(self) -> None:
        script("cluster-stop", env=self.env)
