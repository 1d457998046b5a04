"""What the benchmark scripts share: the data path, timing, recall against exact, the printed
side-by-side table and the JSON file. Each script in this folder imports it (`import _bench`
works because Python puts a script's own folder first on sys.path)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCIFACT = REPO / "data/scifact"
MB = 2**20


def disk_bytes(paths: Iterable[Path]) -> int:
    """Bytes the files under `paths` occupy on disk (allocated blocks, as `du` counts them)."""
    return sum(p.stat().st_blocks * 512 for root in paths for p in [root, *root.rglob("*")] if p.is_file())


def percentile(values: Sequence[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def timed_each(
    run: Callable[[Any], Any], items: Iterable[Any], warm_all: bool = False
) -> tuple[list[Any], dict[str, float]]:
    """Run `run` on each item after one warm-up call (a whole untimed pass with warm_all: steady
    state for engines that read from memory-mapped files); the results, p50/p95 ms, queries/s."""
    items = list(items)
    for item in items if warm_all else items[:1]:
        run(item)
    results, latencies = [], []
    started = time.perf_counter()
    for item in items:
        t0 = time.perf_counter()
        results.append(run(item))
        latencies.append(1000 * (time.perf_counter() - t0))
    total = time.perf_counter() - started
    return results, {
        "p50_ms": statistics.median(latencies),
        "p95_ms": percentile(latencies, 95),
        "qps": len(items) / total,
    }


def recall_vs(found: Sequence[Iterable[str]], truth: Sequence[Iterable[str]], k: int = 10) -> float:
    """Mean overlap of each query's top-k ids with the exact top-k ids."""
    return sum(len(set(list(a)[:k]) & set(list(b)[:k])) for a, b in zip(found, truth)) / (k * len(truth))


def ndcg_at_10(qids: Sequence[str], results: Sequence[Sequence[Any]], qrels: Any) -> float:
    """trec_eval's nDCG@10 of one ranked list of hits per query."""
    from ragembed.evaluation import ir_metrics, run_from_hits

    _, metrics = ir_metrics(run_from_hits(dict(zip(qids, results))), qrels, ["ndcg@10"])
    return metrics["ndcg@10"]


def measure_strategies(
    retriever: Any,
    strategies: Sequence[str],
    data: Any,
    qids: Sequence[str],
    truth: dict[str, list] | None,
    mode: str,
    ingest_s: float,
    exact_of: Callable[[str], str] = lambda s: "dense",
) -> list[dict[str, Any]]:
    """Per strategy: every query of `data` one at a time through Retriever.search (k=100),
    p50/p95 ms, nDCG@10, and recall@10 against truth[exact_of(strategy)] (top-10 id sets of
    the exact search, from an earlier call's rows: {strategy: row["top10"]})."""
    queries = [data.queries[q] for q in qids]
    rows = []
    for strategy in strategies:
        results, timing = timed_each(partial(retriever.search, k=100, strategy=strategy), queries)
        top10 = [{h.id for h in hits[:10]} for hits in results]
        reference = (truth or {}).get(exact_of(strategy))
        rows.append(
            {
                "mode": mode,
                "strategy": strategy,
                "ingest_s": round(ingest_s, 2),
                "ingest_docs_per_s": len(data.corpus) / ingest_s,
                **timing,
                "ndcg@10": ndcg_at_10(qids, results, data.qrels),
                "recall@10_vs_exact": None if reference is None else recall_vs(top10, reference),
                "top10": top10,
            }
        )
    return rows


def machine() -> str:
    import os

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, {platform.system()}"


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """Plain-text table: columns are (key, header, format spec); missing values print as '-'."""
    cells = [[h for _, h, _ in columns]] + [
        ["-" if r.get(key) is None else format(r[key], spec) for key, _, spec in columns] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in cells
    )


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=1, default=str) + "\n")
    print(f"\nwrote {path}")


class WeaviateServer:
    """$WEAVIATE_URL (gRPC on $WEAVIATE_GRPC_PORT, default 50051) if set, else a
    scripts/weaviate.sh server on free loopback ports with its data in `folder`; stop() stops
    only a server it started."""

    def __init__(self, folder: Path) -> None:
        self.data = None
        self.url = os.environ.get("WEAVIATE_URL")
        self.grpc_port = int(os.environ.get("WEAVIATE_GRPC_PORT", "50051"))
        if not self.url:
            from ragembed.stores.weaviate.connection import free_port_pairs

            http, self.grpc_port, gossip, raft = free_port_pairs(4)
            self.env = {
                **os.environ,
                "WEAVIATE_HTTP_PORT": str(http),
                "WEAVIATE_GRPC_PORT": str(self.grpc_port),
                "WEAVIATE_GOSSIP_PORT": str(gossip),
                "WEAVIATE_RAFT_PORT": str(raft),
            }
            self.data, self.url = folder, f"http://127.0.0.1:{http}"
            subprocess.run(["bash", str(REPO / "scripts/weaviate.sh"), "start", str(folder)], env=self.env, check=True)

    @property
    def pids(self) -> list[int]:
        """The server process this object started (none for $WEAVIATE_URL)."""
        return pids_in([self.data / "weaviate.pid"] if self.data is not None else [])

    def stop(self) -> None:
        if self.data is not None:
            subprocess.run(
                ["bash", str(REPO / "scripts/weaviate.sh"), "stop", str(self.data)], env=self.env, check=False
            )


def script(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run scripts/<name>.sh; its stdout (the servers it started)."""
    return subprocess.run(
        ["bash", str(REPO / "scripts" / f"{name}.sh"), *args],
        env={**os.environ, **(env or {})},
        check=True,
        capture_output=True,
        text=True,
    ).stdout


class QdrantServer:
    """$QDRANT_URL (gRPC on $QDRANT_GRPC_PORT, default 6334) if set, else a scripts/qdrant.sh
    server on free loopback ports with its storage in `folder`; stop() stops only a server it
    started."""

    def __init__(self, folder: Path) -> None:
        self.data = None
        self.url = os.environ.get("QDRANT_URL")
        self.grpc_port = int(os.environ.get("QDRANT_GRPC_PORT", "6334"))
        if not self.url:
            self.data = folder
            self.url, _, grpc, _, _ = script("qdrant", "start", str(folder)).split()
            self.grpc_port = int(grpc)

    @property
    def pids(self) -> list[int]:
        """The server process this object started (none for $QDRANT_URL)."""
        return pids_in([self.data / "qdrant.pid"] if self.data is not None else [])

    def stop(self) -> None:
        if self.data is not None:
            script("qdrant", "stop", str(self.data))


class Cluster:
    """A 3-node cluster of `engine` ("qdrant" or "weaviate") from its script, in `folder`:
    urls[k] and (Weaviate) grpc_ports[k] of node k."""

    def __init__(self, engine: str, folder: Path, nodes: int = 3) -> None:
        self.engine = engine
        self.folder = folder
        self.env = {"RAGEMBED_QDRANT_DIR" if engine == "qdrant" else "RAGEMBED_WEAVIATE_DIR": str(folder)}
        self.urls: dict[int, str] = {}
        self.grpc_ports: dict[int, int] = {}
        for line in script(engine, "cluster", str(nodes), env=self.env).splitlines():
            fields = line.split()
            self.urls[int(fields[1])] = fields[2]
            if engine == "weaviate":
                self.grpc_ports[int(fields[1])] = int(fields[4])

    @property
    def pids(self) -> list[int]:
        """Every node's server process (each node keeps its pid file in its own folder)."""
        return pids_in(sorted(self.folder.glob(f"node*/{self.engine}.pid")))

    def stop(self) -> None:
        script(self.engine, "cluster-stop", env=self.env)


def pids_in(files: Sequence[Path]) -> list[int]:
    return [int(f.read_text().split()[0]) for f in files if f.exists()]


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time the processes have used so far (/proc/PID/stat utime, stime)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5), after pid and comm
    return total / ticks
