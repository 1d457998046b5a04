"""Encoding overhead: ragembed's DenseEmbedder against raw SentenceTransformer.encode on the
same texts, model and batch size.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/encoding.py [--docs 1000] [--batch-size 32]
        [--rounds 3] [--device cuda] [--output runs/encoding.json]

Texts: the first --docs SciFact abstracts ("title text", as ragembed indexes them). Rounds
alternate raw / ragembed (cache off) / ragembed (cold cache: encode and write the embeddings
cache) so that both see the same CPU state; each side's best round counts. Also printed: the
warm-cache rate (the same texts again, served from the cache) and the cost per document used by
docs/benchmarks.md's scale projection.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial

import _bench

from ragembed import DenseEmbedder, EmbeddingCache
from ragembed.evaluation import load_beir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(_bench.SCIFACT))
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default=None, help="torch device (default: sentence-transformers' choice)")
    parser.add_argument("--output", default="runs/encoding.json")
    args = parser.parse_args()
    texts = [d.text for d in load_beir(args.data, "test").corpus[: args.docs]]

    plain = DenseEmbedder(batch_size=args.batch_size, cache=False, device=args.device)
    raw_model = plain.model  # the same loaded weights: only the code around encode differs

    def raw() -> None:
        raw_model.encode(
            texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    best = {
        "raw SentenceTransformer.encode": float("inf"),
        "ragembed, cache off": float("inf"),
        "ragembed, cold cache": float("inf"),
    }
    warm_s = float("inf")
    with tempfile.TemporaryDirectory() as folder:
        raw_model.encode(texts[:64], batch_size=args.batch_size)  # warm-up: first-call allocations
        for round_no in range(args.rounds):
            cache = EmbeddingCache(f"{folder}/cache-{round_no}")
            cached = DenseEmbedder(batch_size=args.batch_size, cache=cache, device=args.device)
            this_round: dict[str, float] = {}
            for label, run in (
                ("raw SentenceTransformer.encode", raw),
                ("ragembed, cache off", partial(plain.embed_documents, texts)),
                ("ragembed, cold cache", partial(cached.embed_documents, texts)),
            ):
                started = time.perf_counter()
                run()
                this_round[label] = time.perf_counter() - started
                best[label] = min(best[label], this_round[label])
            started = time.perf_counter()
            cached.embed_documents(texts)
            warm_s = min(warm_s, time.perf_counter() - started)
            print(f"round {round_no + 1}/{args.rounds}: " + ", ".join(f"{k} {v:.1f} s" for k, v in this_round.items()))

    raw_s = best["raw SentenceTransformer.encode"]
    rows = [
        {"encoder": label, "docs_per_s": len(texts) / s, "ms_per_doc": 1000 * s / len(texts), "ratio": raw_s / s}
        for label, s in best.items()
    ]
    rows.append(
        {
            "encoder": "ragembed, warm cache",
            "docs_per_s": len(texts) / warm_s,
            "ms_per_doc": 1000 * warm_s / len(texts),
            "ratio": raw_s / warm_s,
        }
    )
    print(
        f"\n{len(texts)} SciFact documents, batch {args.batch_size}, model all-MiniLM-L6-v2 "
        f"(max {raw_model.max_seq_length} tokens) on {raw_model.device}, {_bench.machine()}"
    )
    print(
        _bench.table(
            rows,
            [
                ("encoder", "encoder", ""),
                ("docs_per_s", "docs/s", ".1f"),
                ("ms_per_doc", "ms/doc", ".2f"),
                ("ratio", "throughput vs raw", ".3f"),
            ],
        )
    )
    _bench.write_json(
        args.output,
        {
            "docs": len(texts),
            "batch_size": args.batch_size,
            "rounds": args.rounds,
            "device": str(raw_model.device),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
