"""Every benchmark script runs end to end, as a user runs it, on a small BEIR cut of SciFact,
and what it measures agrees across the systems it compares (same data in, same exact top-10
out). The figures themselves come from full runs: docs/benchmarks.md. Nothing here asserts on
time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_benchmark(name: str, tmp_path: Path, *args: str) -> dict:
    output = tmp_path / f"{name}.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), *args, "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(output.read_text())
    assert result["machine"] and result["rows" if "rows" in result else "runs"]
    return result


def test_encoding_compares_ragembed_with_raw_sentence_transformers(small_beir, tmp_path):
    result = run_benchmark("encoding", tmp_path, "--data", str(small_beir), "--docs", "40", "--rounds", "1")
    rows = {r["encoder"]: r for r in result["rows"]}
    assert set(rows) == {
        "raw SentenceTransformer.encode",
        "ragembed, cache off",
        "ragembed, cold cache",
        "ragembed, warm cache",
    }
    assert rows["raw SentenceTransformer.encode"]["ratio"] == 1.0
    assert all(r["docs_per_s"] > 0 for r in rows.values()) and result["docs"] == 40


def test_backends_compares_torch_with_onnx_runtime_on_the_same_vectors(small_beir, tmp_path):
    pytest.importorskip("onnxruntime", reason="the backends need the ragembed[fast] extra")
    pytest.importorskip("pylate", reason="the ColBERT rows need the ragembed[colbert] extra")
    rows = run_benchmark(
        "backends",
        tmp_path,
        "--data",
        str(small_beir),
        "--docs",
        "30",
        "--colbert-docs",
        "6",
        "--rows",
        "torch",
        "onnx",
        "colbert:torch",
        "colbert:onnx",
    )["rows"]
    assert [(r["kind"], r["backend"]) for r in rows] == [
        ("dense", "torch"),
        ("dense", "onnx"),
        ("colbert", "torch"),
        ("colbert", "onnx"),
    ]
    assert all(r["docs_per_s"] > 0 and r["peak_rss_mb"] > 0 and r["max_abs_vs_torch"] < 1e-5 for r in rows)
    assert rows[0]["ndcg10"] == pytest.approx(rows[1]["ndcg10"], abs=1e-6) and 0 <= rows[0]["ndcg10"] <= 1


def test_ingest_holds_the_same_points_in_every_library(small_beir, tmp_path):
    result = run_benchmark("ingest", tmp_path, "--data", str(small_beir), "--copies", "2")
    libraries = {(r["library"], r["engine"]) for r in result["rows"]}
    assert ("LlamaIndex QdrantVectorStore.add (batch 64)", "qdrant-client local (:memory:)") in libraries
    assert ("LlamaIndex QdrantVectorStore.add (batch 1000)", "Qdrant server, gRPC") in libraries
    assert ("ragembed store.upsert", "Qdrant server, HTTP") in libraries
    assert len(libraries) == 14  # ragembed 2 ways x 4 engines, LlamaIndex 2 batch sizes x 3 engines
    searched = [r for r in result["rows"] if r.get("p50_ms") is not None]
    assert len(searched) == 10
    # exact engines at this size: every library returns the exact top-10 of the same vectors
    assert all(r["recall@10_vs_exact"] == 1.0 for r in searched), searched


def test_dense_scale_measures_every_strategy_on_both_stores(small_beir, tmp_path):
    result = run_benchmark("dense_scale", tmp_path, "--data", str(small_beir), "--sizes", "3000", "--queries", "8")
    rows = {(r["store"], r["strategy"]): r for r in result["rows"]}
    assert len(rows) == 18 and result["vectors"] == "scifact-derived"  # 9 strategies x 2 stores
    assert rows["memory", "dense"]["recall@10_vs_exact"] == 1.0
    assert rows["qdrant-edge", "dense"]["recall@10_vs_exact"] == 1.0  # under 10 MB: exact full scan
    assert rows["memory", "binary"]["bytes_per_vector"] == 48
    assert all(0 < r["recall@10_vs_exact"] <= 1 for r in rows.values())
    memory_only = run_benchmark(
        "dense_scale", tmp_path, "--data", str(small_beir), "--sizes", "3000", "--queries", "8", "--memory-only"
    )
    assert {r["store"] for r in memory_only["rows"]} == {"memory"} and len(memory_only["rows"]) == 9


@pytest.mark.colbert
def test_multivector_compares_edge_with_plaid_and_brute_force(small_beir, tmp_path):
    pytest.importorskip("pylate")
    result = run_benchmark("multivector", tmp_path, "--data", str(small_beir))
    rows = {r["system"]: r for r in result["rows"]}
    assert len(rows) == 33 and "PyLate PLAID (fast-plaid, 4-bit)" in rows
    exact = rows["brute-force MaxSim (memory store): colbert"]
    assert exact["recall@10"] == 1.0
    assert rows["Qdrant Edge: colbert"]["ndcg@10"] == pytest.approx(exact["ndcg@10"], abs=1e-4)
    assert rows["Qdrant Edge: colbert"]["recall@10"] >= 0.99
    # the same dense candidates reranked by float16 tokens: the same top-10, in half the bytes
    whole, half = rows["Qdrant Edge: colbert+dense"], rows["Qdrant Edge: colbert+dense:float16"]
    assert half["recall@10"] == pytest.approx(whole["recall@10"], abs=0.02)
    assert half["tokens_mb"] < whole["tokens_mb"]
    pooled = rows["Qdrant Edge: colbert+dense:float16, pool 2"]
    assert pooled["tokens_mb"] < half["tokens_mb"]
    # MaxSim over fewer dense candidates finds at most the exact top 10 that more candidates find
    fewer, more = rows["Qdrant Edge: colbert+dense:turbo4:30"], rows["Qdrant Edge: colbert+dense:turbo4"]
    assert fewer["recall@10"] <= more["recall@10"] + 0.02
    # a quantized index beside the float32 tokens: int8 codes a quarter of them, binary a 32nd
    int8, binary = rows["Qdrant Edge: colbert+dense:int8"], rows["Qdrant Edge: colbert+dense:binary"]
    assert whole["codes_mb"] == 0 and int8["tokens_mb"] > whole["tokens_mb"]
    assert whole["tokens_mb"] / 8 < int8["codes_mb"] < whole["tokens_mb"] / 2
    assert 0 < binary["codes_mb"] < int8["codes_mb"] / 4
    assert min(int8["recall@10"], binary["recall@10"]) >= whole["recall@10"] - 0.05
    # the documents' stop words left out: fewer tokens than whole ones of the same datatype
    no_stop_words = rows["Qdrant Edge: colbert+dense:float16, no stop words"]
    assert pooled["tokens_mb"] < no_stop_words["tokens_mb"] < half["tokens_mb"]
    assert no_stop_words["recall@10"] > 0.5
    both = rows["Qdrant Edge: colbert+dense:float16, pool 2, no stop words"]
    assert both["tokens_mb"] < min(pooled["tokens_mb"], no_stop_words["tokens_mb"])
    # without Qdrant's write-ahead log: the same ranking and segments, no log beside them
    unlogged = rows["Qdrant Edge: colbert+dense:turbo4, no WAL"]
    assert more["wal_mb"] > 0 and unlogged["wal_mb"] == 0
    assert unlogged["ndcg@10"] == pytest.approx(more["ndcg@10"], abs=1e-4)
    assert unlogged["index_mb"] == pytest.approx(more["index_mb"], rel=0.2)
    # MUVERA's first stage: fixed-size encodings of the tokens, larger than the dense model's vector
    muvera, small = rows["Qdrant Edge: colbert+muvera:turbo4"], rows["Qdrant Edge: colbert+muvera:k4p16r10:turbo4"]
    assert muvera["first_mb"] > small["first_mb"] > more["first_mb"] > 0
    assert min(muvera["recall@10"], small["recall@10"]) > 0.5
    assert all(r["index_mb"] >= r["tokens_mb"] > 0 and r["ndcg@10"] > 0 for r in rows.values())


@pytest.mark.colbert
@pytest.mark.server
def test_weaviate_multivector_ranks_every_index_against_exact_maxsim_on_one_cut(small_beir, tmp_path):
    from weaviate_server import unavailable_reason

    pytest.importorskip("pylate")
    if unavailable_reason():
        pytest.skip(unavailable_reason())
    result = run_benchmark("weaviate_multivector", tmp_path, "--data", str(small_beir), "--docs", "30")
    rows = {(r["system"], r["strategy"]): r for r in result["rows"]}
    assert len(rows) == 13 and result["documents"] == 30
    assert rows["brute-force MaxSim (memory store)", "colbert"]["recall@10"] == 1.0
    # the same dense candidates reranked by exact MaxSim, in either engine
    edge, weaviate = rows["Qdrant Edge", "colbert+dense"], rows["Weaviate, multi-vector HNSW", "colbert+dense"]
    assert weaviate["recall@10"] == pytest.approx(edge["recall@10"], abs=0.02)
    # RQ and BQ codes, rescored with the original tokens, keep the float32 tokens' top 10
    rq, bq = (
        rows["Weaviate, multi-vector HNSW, RQ 8-bit", "colbert+dense:int8"],
        rows["Weaviate, multi-vector HNSW, BQ", "colbert+dense:binary"],
    )
    assert min(rq["recall@10"], bq["recall@10"]) >= weaviate["recall@10"] - 0.05
    # Weaviate's own multi-vector HNSW over every document finds most of exact MaxSim's top 10
    assert rows["Weaviate, multi-vector HNSW", "colbert"]["recall@10"] > 0.8
    assert rows["Weaviate MUVERA", "colbert"]["recall@10"] > 0.5
    # behind the dense first stage MUVERA's collection ranks the same candidates by MaxSim
    assert rows["Weaviate MUVERA", "colbert+dense"]["recall@10"] == pytest.approx(weaviate["recall@10"], abs=0.02)
    assert all(r["ndcg@10"] > 0 and r["ingest_docs_per_s"] > 0 for r in rows.values())
    if not os.environ.get("WEAVIATE_URL"):  # the script's own server: its folders can be measured
        assert all(r["size_mb"] > 0 for r in rows.values())


def test_qdrant_modes_scores_every_mode_alike(small_beir, tmp_path):
    result = run_benchmark("qdrant_modes", tmp_path, "--data", str(small_beir))
    by_strategy: dict[str, set] = {}
    for row in result["runs"]:
        by_strategy.setdefault(row["strategy"], set()).add(round(row["ndcg@10"], 4))
    # every engine gives each exact or rescored strategy the same quality
    assert all(len(by_strategy[s]) == 1 for s in ("dense", "int8", "binary", "bm25")), by_strategy


def test_search_many_times_both_ways_on_every_store_and_they_agree(small_beir, tmp_path):
    from qdrant_server import unavailable_reason as qdrant_unavailable
    from weaviate_server import unavailable_reason

    stores = (
        "memory,qdrant-edge"
        + ("" if qdrant_unavailable() else ",qdrant-server")
        + ("" if unavailable_reason() else ",weaviate")
    )
    result = run_benchmark("search_many", tmp_path, "--data", str(small_beir), "--stores", stores, "--rounds", "1")
    # the script itself checks that every way returns the same hits; here: every row is there
    assert {(r["store"], r["strategy"]) for r in result["runs"]} == {
        (s, strategy)
        for s in stores.split(",")
        for strategy in ("dense", "hybrid")
        if (s, strategy) != ("weaviate", "hybrid")
    }
    assert all(r["sync_batched"] > 0 and r["async_batched"] > 0 for r in result["runs"])


def test_load_runs_concurrent_clients_on_every_backend_without_errors(small_beir, tmp_path):
    from qdrant_server import unavailable_reason as qdrant_unavailable
    from weaviate_server import unavailable_reason

    backends = (
        "memory,qdrant-local,qdrant-edge"
        + ("" if qdrant_unavailable() else ",qdrant-server,qdrant-server-grpc")
        + ("" if unavailable_reason() else ",weaviate,weaviate-embedded")
    )
    result = run_benchmark(
        "load",
        tmp_path,
        "--data",
        str(small_beir),
        "--seconds",
        "2",
        "--clients",
        "4",
        "--async-clients",
        "16",
        "--backends",
        backends,
    )
    rows = {(r["backend"], r["mode"]) for r in result["rows"]}
    assert rows == {(b, m) for b in backends.split(",") for m in ("threads", "asyncio-threads", "asyncio")}
    for row in result["rows"]:
        # concurrency changes nothing: no failures, every answer the one a lone client gets
        assert row["searches"] > 0 and row["errors"] == 0 and row["differs"] == 0, row
        assert row["client_cpu_ms"] > 0, row
        given_by_url = os.environ.get("QDRANT_URL" if "qdrant" in row["backend"] else "WEAVIATE_URL")
        if row["backend"] in ("memory", "qdrant-local", "qdrant-edge"):  # the engine is this process
            assert row["server_cpu_ms"] == 0, row
        elif row["backend"] in ("qdrant-server", "qdrant-server-grpc", "weaviate") and not given_by_url:
            # servers the script started: their CPU time is read from /proc
            assert row["server_cpu_ms"] > 0 and row["cores_busy"] > 0, row


@pytest.mark.server
def test_qdrant_on_disk_loads_one_collection_both_ways_into_servers_of_its_own(tmp_path):
    from qdrant_server import unavailable_reason

    if unavailable_reason():
        pytest.skip(unavailable_reason())
    rows = run_benchmark("qdrant_on_disk", tmp_path, "--docs", "3000")["rows"]
    assert [r["setting"] for r in rows] == ["in RAM (Qdrant's default)", "vectors_on_disk=True (memory-mapped)"]
    assert rows[0]["recall@10"] == pytest.approx(rows[1]["recall@10"], abs=0.05)
    assert all(r["rss_file_mb"] >= 0 and r["p50_ms"] > 0 for r in rows)


def test_long_documents_measures_whole_passages_and_the_oracle_on_each_store(small_beir, tmp_path):
    result = run_benchmark(
        "long_documents",
        tmp_path,
        "--data",
        str(small_beir),
        "--stores",
        "memory,qdrant-edge",
        "--sizes",
        "window,64",
        "--per-document",
        "4",
        "--original",
    )
    rows = result["rows"]
    measured = {(r["data"], r["store"], r["docs"], r["strategy"]) for r in rows}
    for data in ("scifact-long (paragraphs)", "scifact-long (sentences)"):
        assert (data, "memory", "oracle", "dense") in measured
        for store in ("memory", "qdrant-edge"):
            for docs in ("whole", "passages:window", "passages:64"):
                assert {(data, store, docs, s) for s in ("dense", "hybrid")} <= measured
    assert ("scifact", "qdrant-edge", "passages:window", "dense") in measured
    by = {(r["data"], r["store"], r["docs"], r["strategy"]): r for r in rows}
    long = "scifact-long (paragraphs)"
    for docs in ("whole", "passages:window", "passages:64"):  # the same vectors on both stores
        assert by[(long, "memory", docs, "dense")]["ndcg@10"] == pytest.approx(
            by[(long, "qdrant-edge", docs, "dense")]["ndcg@10"], abs=1e-6
        )
    assert (
        by[(long, "memory", "passages:64", "dense")]["bytes_per_doc"]
        > by[(long, "memory", "whole", "dense")]["bytes_per_doc"]
    )


def test_hybrid_floor_answers_what_the_retriever_answers_through_raw_engine_calls(small_beir, tmp_path):
    result = run_benchmark("hybrid_floor", tmp_path, "--data", str(small_beir), "--per-document", "4")
    rows = {r["row"]: r for r in result["rows"]}
    assert set(rows) == {
        "Retriever whole dense",
        "Retriever passages dense",
        "Retriever passages hybrid",
        "raw whole dense",
        "raw passages hybrid",
    }
    # The floor is a floor of the same answer: the raw calls find the Retriever's top 10.
    assert rows["raw whole dense"]["same_top10"] >= 0.9
    assert rows["raw passages hybrid"]["same_top10"] >= 0.9
