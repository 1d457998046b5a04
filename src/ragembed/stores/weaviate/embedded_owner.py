"""Who runs the embedded Weaviate server of a data folder, so that a server outliving its owner
is stopped before a new one starts on the same data.

weaviate-client starts the embedded server as a child process and stops it when the client
closes. A client killed outright (SIGKILL, a crash, the OOM killer) never closes, and its server
keeps running, holding the folder: the next start would run a second server on the same files.
So each start writes ragembed-embedded.json (server and owner process ids) into the folder, and
the next start stops a recorded server whose owner is gone.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from ragembed.errors import StoreError

RECORD = "ragembed-embedded.json"


def claim(data: Path) -> None:
    """Make `data` free for a new embedded server: stop an orphaned one; refuse if its owner
    is alive (this process too: a store it has not closed still uses that server)."""
    try:
        recorded = json.loads((data / RECORD).read_text())
        server, owner = int(recorded["server"]), int(recorded["owner"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # no record (or an unreadable one): nothing started here by ragembed
    if not _is_weaviate(server):
        return
    if _alive(owner):
        raise StoreError(
            f"the embedded Weaviate server with data in {data} belongs to process {owner}, which is "
            "still running; close its store first, or use another folder"
        )
    _stop(server)


def record(data: Path, server: int) -> None:
    (data / RECORD).write_text(json.dumps({"server": server, "owner": os.getpid()}))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_weaviate(pid: int) -> bool:
    # A recycled process id must not be killed: check it still runs a Weaviate binary.
    try:
        return b"weaviate" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _stop(pid: int, timeout_s: float = 30.0) -> None:
    """SIGTERM (Weaviate flushes and exits), then SIGKILL if it has not gone in `timeout_s`."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and _is_weaviate(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid) and _is_weaviate(pid):
        os.kill(pid, signal.SIGKILL)
