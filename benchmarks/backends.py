"""Inference backends: raw torch `SentenceTransformer.encode` against ragembed's ONNX Runtime
(fp32, int8) and OpenVINO backends, on the whole SciFact corpus, with the nDCG@10 each reaches.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/backends.py [--docs 5183] [--batch-size 32]
        [--colbert-docs 1000] [--output runs/backends.json]

Each row runs in its own process (so its peak RSS is its own), after a first process that only
loads the model and exports it (the "first load" column: torch's own load, or load + export +
fusion + quantization). The measured process loads the cached graph, warms up on 32 texts,
encodes the first --docs abstracts once, timed (docs/s), and the 300 test queries; nDCG@10 is
exact cosine search over those vectors (trec_eval's definition). The ColBERT rows encode the
first --colbert-docs abstracts with PyLate's model on torch and on ONNX Runtime and give the
largest difference of any token vector. The embeddings cache is off throughout; exported graphs
go to a temporary cache folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import _bench
import numpy as np

from ragembed.evaluation import ir_metrics, load_beir

DENSE_ROWS = ["torch", "onnx", "onnx:int8", "openvino"]
COLBERT_ROWS = ["colbert:torch", "colbert:onnx"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--docs", type=int, default=None, help="documents to encode (default: the whole corpus)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--colbert-docs", type=int, default=1000)
    parser.add_argument("--rows", nargs="*", default=DENSE_ROWS + COLBERT_ROWS)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process's row
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)  # only load (export)
    parser.add_argument("--output", default="runs/backends.json")
    args = parser.parse_args()
    if args.prepare:
        print(json.dumps(prepare(args.one, args.batch_size)))
        return
    if args.one:
        print(json.dumps(measure_colbert(args) if args.one.startswith("colbert:") else measure_dense(args)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for row in args.rows:
            child = [sys.executable, __file__, "--one", row, "--data", args.data, "--batch-size", str(args.batch_size)]
            loaded = run_child([*child, "--prepare"], cache)
            child += ["--colbert-docs", str(args.colbert_docs)] + (["--docs", str(args.docs)] if args.docs else [])
            rows.append({**run_child(child, cache), **loaded})
            print(f"{row}: {rows[-1]}", flush=True)
    for kind in ("dense", "colbert"):
        kept = [r for r in rows if r["kind"] == kind]
        base = next((r for r in kept if r["backend"] == "torch"), None)
        for r in kept:
            r["vs_torch"] = r["docs_per_s"] / base["docs_per_s"] if base else None
    dense = [r for r in rows if r["kind"] == "dense"]
    colbert = [r for r in rows if r["kind"] == "colbert"]
    print(f"\nall-MiniLM-L6-v2 (max 256 tokens), batch {args.batch_size}, {_bench.machine()}")
    print(f"dense: {dense[0]['docs'] if dense else 0} SciFact abstracts, 300 queries, exact cosine top 10")
    print(
        _bench.table(
            dense,
            [
                ("label", "encoder", ""),
                ("docs_per_s", "docs/s", ".1f"),
                ("ms_per_doc", "ms/doc", ".1f"),
                ("vs_torch", "vs torch", ".2f"),
                ("ndcg10", "nDCG@10", ".4f"),
                ("max_abs_vs_torch", "max |v - torch|", ".1e"),
                ("peak_rss_mb", "peak RSS MB", ".0f"),
                ("first_load_s", "first load s", ".1f"),
            ],
        )
    )
    if colbert:
        print(f"\nColBERT (PyLate, 128-dim head): {colbert[0]['docs']} abstracts")
        print(
            _bench.table(
                colbert,
                [
                    ("label", "encoder", ""),
                    ("docs_per_s", "docs/s", ".1f"),
                    ("vs_torch", "vs torch", ".2f"),
                    ("max_abs_vs_torch", "max |token v - torch|", ".1e"),
                    ("peak_rss_mb", "peak RSS MB", ".0f"),
                ],
            )
        )
    _bench.write_json(args.output, {"batch_size": args.batch_size, "rows": rows})


def run_child(command: list[str], cache: str) -> dict[str, Any]:
    done = subprocess.run(
        command, env={**os.environ, "RAGEMBED_CACHE_DIR": cache}, check=True, capture_output=True, text=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def embedder_for(row: str, batch_size: int) -> Any:
    from ragembed import ColBERTEmbedder, DenseEmbedder

    backend, quantize = parse_row(row)
    cls = ColBERTEmbedder if row.startswith("colbert:") else DenseEmbedder
    return cls(batch_size=batch_size, cache=False, backend=backend, quantize=quantize)  # type: ignore[arg-type]


def prepare(row: str, batch_size: int) -> dict[str, Any]:
    started = time.perf_counter()
    embedder_for(row, batch_size)
    return {"first_load_s": time.perf_counter() - started}


def parse_row(row: str) -> tuple[str, str | None]:
    backend, _, quantize = row.removeprefix("colbert:").partition(":")
    return backend, quantize or None


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_dense(args: argparse.Namespace) -> dict[str, Any]:
    backend, quantize = parse_row(args.one)
    data = load_beir(args.data, "test")
    texts = [d.text for d in data.corpus[: args.docs]]
    embedder = embedder_for(args.one, args.batch_size)
    if backend == "torch":  # the peer: sentence-transformers itself, no ragembed code around it
        model = embedder.model

        def encode(batch: list[str]) -> np.ndarray:
            return np.asarray(
                model.encode(batch, batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False)
            )
    else:

        def encode(batch: list[str]) -> np.ndarray:
            return embedder.embed_documents(batch).data

    encode(texts[:32])
    started = time.perf_counter()
    docs = encode(texts)
    seconds = time.perf_counter() - started
    qids = list(data.queries)
    queries = embedder.embed_queries([data.queries[q] for q in qids]).data
    scores = queries @ docs.T
    top = np.argsort(-scores, axis=1)[:, :10]
    ids = [d.id for d in data.corpus[: len(texts)]]
    run = {q: {ids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(qids)}
    _, metrics = ir_metrics(run, data.qrels, ["ndcg@10"])
    return {
        "kind": "dense",
        "label": "raw SentenceTransformer.encode (torch fp32)" if backend == "torch" else f"ragembed {args.one}",
        "backend": backend,
        "quantize": quantize,
        "docs": len(texts),
        "docs_per_s": len(texts) / seconds,
        "ms_per_doc": 1000 * seconds / len(texts),
        "ndcg10": metrics["ndcg@10"],
        "max_abs_vs_torch": compare_with_torch(args, "dense", [docs]),
        "peak_rss_mb": peak_rss_mb(),
    }


def measure_colbert(args: argparse.Namespace) -> dict[str, Any]:
    backend, quantize = parse_row(args.one)
    texts = [d.text for d in load_beir(args.data, "test").corpus[: args.colbert_docs]]
    embedder = embedder_for(args.one, args.batch_size)
    embedder.embed_documents(texts[:32])
    started = time.perf_counter()
    vectors = list(embedder.embed_documents(texts).vectors)
    seconds = time.perf_counter() - started
    return {
        "kind": "colbert",
        "label": f"ragembed ColBERTEmbedder {backend}" + (f" {quantize}" if quantize else ""),
        "backend": backend,
        "quantize": quantize,
        "docs": len(texts),
        "docs_per_s": len(texts) / seconds,
        "max_abs_vs_torch": compare_with_torch(args, "colbert", vectors),
        "peak_rss_mb": peak_rss_mb(),
    }


def compare_with_torch(args: argparse.Namespace, kind: str, arrays: list[np.ndarray]) -> float | None:
    """The torch row saves its vectors (it runs first); later rows report their largest
    difference from them."""
    path = os.path.join(os.environ["RAGEMBED_CACHE_DIR"], f"{kind}-torch.npz")
    if parse_row(args.one)[0] == "torch":
        np.savez(path, *arrays)
        return 0.0
    if not os.path.exists(path):
        return None
    with np.load(path) as saved:
        reference = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    return float(max(np.abs(a - b).max() for a, b in zip(arrays, reference)))


if __name__ == "__main__":
    main()
