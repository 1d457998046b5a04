"""Evaluation on real runs: trec_eval-exact metrics, RAGAS context metrics, reports, the eval and
demo commands."""

from __future__ import annotations

import json

import pytest
from cli_runner import cli

from ragembed import MemoryStore, Retriever
from ragembed.errors import InvalidInputError
from ragembed.evaluation import evaluate, ir_metrics, load_beir, run_from_hits, sample
from ragembed.evaluation.ragas_metrics import ragas_context_metrics
from ragembed.evaluation.report import write_report


@pytest.fixture(scope="module")
def small(scifact_dir):
    return sample(load_beir(scifact_dir, "test"), 15, distractors_per_query=8)


@pytest.fixture(scope="module")
def retriever(small, dense_embedder, bm25_embedder):
    r = Retriever(
        MemoryStore(),
        ["dense", "bm25", "hybrid", "matryoshka:64", "funnel:64"],
        embedder=dense_embedder,
        sparse_embedder=bm25_embedder,
    )
    r.index(small.corpus)
    return r


@pytest.fixture(scope="module")
def results(small, retriever):
    qids = list(small.queries)
    return {
        s: dict(zip(qids, retriever.search_many([small.queries[q] for q in qids], k=100, strategy=s)))
        for s in ("dense", "bm25", "hybrid")
    }


def test_metrics_equal_pytrec_eval_on_real_runs(small, results):
    import pytrec_eval

    for strategy, hits in results.items():
        run = run_from_hits(hits)
        per_query, mean = ir_metrics(
            run, small.qrels, ["ndcg@10", "recall@100", "precision@10", "map@100", "hit_rate@10", "mrr@10"]
        )
        direct = pytrec_eval.RelevanceEvaluator(
            {q: dict(d) for q, d in small.qrels.items()},
            {"ndcg_cut.10", "recall.100", "P.10", "map_cut.100", "success.10"},
        ).evaluate(run)
        for qid, values in direct.items():
            for ours, theirs in (
                ("ndcg@10", "ndcg_cut_10"),
                ("recall@100", "recall_100"),
                ("precision@10", "P_10"),
                ("map@100", "map_cut_100"),
                ("hit_rate@10", "success_10"),
            ):
                assert per_query[qid][ours] == pytest.approx(values[theirs], abs=1e-9), (strategy, qid, ours)
            ranks = [rank for rank, h in enumerate(hits[qid][:10], start=1) if small.qrels[qid].get(h.id, 0) > 0]
            assert per_query[qid]["mrr@10"] == pytest.approx(1 / ranks[0] if ranks else 0.0, abs=1e-12)
        assert mean["ndcg@10"] == pytest.approx(sum(v["ndcg_cut_10"] for v in direct.values()) / len(direct), abs=1e-9)
        assert 0.5 < mean["ndcg@10"] <= 1.0


def test_ties_are_scored_in_the_retriever_order():
    from ragembed import Hit

    hits = {"q": [Hit("b", 0.5), Hit("a", 0.5)]}  # equal scores, "b" ranked first
    _, mean = ir_metrics(run_from_hits(hits), {"q": {"b": 1}}, ["mrr@10"])
    assert mean["mrr@10"] == 1.0


def test_queries_without_results_score_zero(small):
    qid = next(iter(small.queries))
    _, mean = ir_metrics({}, {qid: small.qrels[qid]}, ["ndcg@10", "mrr@10"])
    assert mean == {"ndcg@10": 0.0, "mrr@10": 0.0}


def test_unknown_metric_is_refused():
    with pytest.raises(InvalidInputError, match="unknown metric 'ndcg'"):
        ir_metrics({}, {"q": {"d": 1}}, ["ndcg"])


def test_ragas_id_based_metrics_count_relevant_contexts(small, results):
    texts = {d.id: d.text for d in small.corpus}
    scores = ragas_context_metrics(results["dense"], small.qrels, texts, k=10)
    precision = [len({h.id for h in results["dense"][q][:10]} & set(small.qrels[q])) / 10 for q in small.qrels]
    recall = [
        len({h.id for h in results["dense"][q][:10]} & set(small.qrels[q])) / len(small.qrels[q]) for q in small.qrels
    ]
    assert scores["context_precision"] == pytest.approx(sum(precision) / len(precision))
    assert scores["context_recall"] == pytest.approx(sum(recall) / len(recall))
    assert 0 < scores["context_recall_nonllm"] <= 1 and 0 < scores["context_precision_nonllm"] <= 1


def test_evaluate_and_report(tmp_path, small, retriever):
    runs = evaluate(retriever, small, ["dense", "bm25", "matryoshka:64", "funnel:64"], k=100, store_name="memory")
    by_strategy = {r.strategy: r.per_query for r in runs}
    assert by_strategy["matryoshka:64"] != by_strategy["dense"]  # each strategy searched, not its embedder's name
    folder = write_report(tmp_path / "report", small, runs)
    report = json.loads((folder / "report.json").read_text())
    assert {k: report[k] for k in ("split", "n_queries", "n_docs")} == {
        "split": "test",
        "n_queries": 15,
        "n_docs": len(small.corpus),
    }
    first = report["runs"][0]
    # the collection is in passages (the default): a document's bytes are its passage vectors'
    passages = retriever.store.vectors([d.id for d in small.corpus], "dense")
    per_doc = sum(len(v) for v in passages.values()) / len(small.corpus)
    assert per_doc > 1.5  # abstracts longer than 128 word pieces are several passages
    assert first["strategy"] == "dense" and first["store"] == "memory"
    assert first["bytes_per_doc"] == pytest.approx(1536 * per_doc)
    assert set(first["metrics"]) >= {
        "ndcg@10",
        "recall@100",
        "mrr@10",
        "map@100",
        "context_precision",
        "context_recall",
    }
    assert first["latency_ms"]["p95"] >= first["latency_ms"]["p50"] > 0
    assert {r["strategy"]: r["bytes_per_doc"] for r in report["runs"]}["matryoshka:64"] == pytest.approx(256 * per_doc)
    for plot in ("quality_vs_bytes.png", "quality_vs_dimension.png", "latency.png"):
        assert (folder / plot).read_bytes().startswith(b"\x89PNG")
    assert "| `dense` |" in (folder / "report.md").read_text()


@pytest.fixture()
def train_beir(tmp_path, scifact_dir):
    """Another BEIR folder, built from SciFact's train split: 12 queries, their documents, 60 others."""
    folder = tmp_path / "scifact-train-mini"
    (folder / "qrels").mkdir(parents=True)
    rows = (scifact_dir / "qrels" / "train.tsv").read_text().splitlines()
    qids = list(dict.fromkeys(r.split("\t")[0] for r in rows[1:]))[:12]
    kept = [r for r in rows[1:] if r.split("\t")[0] in qids]
    judged = {r.split("\t")[1] for r in kept}
    corpus = [
        line for line in (scifact_dir / "corpus.jsonl").read_text().splitlines() if json.loads(line)["_id"] in judged
    ][:100]
    corpus += (scifact_dir / "corpus.jsonl").read_text().splitlines()[:60]
    (folder / "corpus.jsonl").write_text("\n".join(dict.fromkeys(corpus)) + "\n")
    (folder / "queries.jsonl").write_text(
        "\n".join(
            line for line in (scifact_dir / "queries.jsonl").read_text().splitlines() if json.loads(line)["_id"] in qids
        )
        + "\n"
    )
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(kept) + "\n")
    return folder


def test_eval_command_on_another_beir_folder(tmp_path, train_beir):
    done = cli(
        "eval",
        str(train_beir),
        "--split",
        "train",
        "--store",
        "memory",
        "--strategy",
        "dense",
        "--strategy",
        "bm25",
        "--strategy",
        "hybrid",
        "--output",
        "out",
        "--json",
        cwd=tmp_path,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["dataset"] == "scifact-train-mini" and report["n_queries"] == 12
    assert [r["strategy"] for r in report["runs"]] == ["dense", "bm25", "hybrid"]
    assert all(r["metrics"]["ndcg@10"] > 0.5 for r in report["runs"])
    assert (tmp_path / "out" / "report.md").exists() and (tmp_path / "out" / "latency.png").exists()


def test_eval_command_names_the_malformed_file_and_line(tmp_path, train_beir):
    lines = (train_beir / "corpus.jsonl").read_text().splitlines()
    lines[3] = lines[3][:-5]
    (train_beir / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    done = cli("eval", str(train_beir), "--split", "train", "--store", "memory", cwd=tmp_path, timeout=900)
    assert done.returncode == 2 and "corpus.jsonl:4: not valid JSON" in done.stderr
    missing = cli("eval", str(train_beir), "--split", "dev", cwd=tmp_path, timeout=900)
    assert missing.returncode == 2 and "qrels/dev.tsv" in missing.stderr


def test_demo_command_prints_the_choice_table(tmp_path, scifact_dir):
    done = cli(
        "demo",
        "--data",
        str(scifact_dir),
        "--sample",
        "5",
        "--strategy",
        "dense",
        "--strategy",
        "binary",
        "--strategy",
        "bm25",
        "--store",
        f"qdrant-edge:{tmp_path / 'demo'}",
        "--output",
        "report",
        cwd=tmp_path,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout.split("strategy")[1]
    for strategy in ("dense", "binary", "bm25"):
        assert f"\n{strategy} " in table
    assert (tmp_path / "report" / "report.json").exists()


def test_the_demo_reuses_its_collection_and_rebuilds_it_for_other_embedders(tmp_path, scifact_dir):
    store = f"qdrant-edge:{tmp_path / 'demo'}"
    args = ("demo", "--data", str(scifact_dir), "--sample", "5", "--strategy", "dense", "--store", store)

    def demo(*more: str) -> tuple[str, float]:
        done = cli(*args, *more, "--output", "report", cwd=tmp_path, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads((tmp_path / "report" / "report.json").read_text())
        return done.stderr, report["runs"][0]["metrics"]["ndcg@10"]

    first, ndcg = demo()
    assert "indexing" in first
    again, ndcg_again = demo()
    assert "already holds the" in again and "indexing" not in again
    assert ndcg_again == ndcg
    pytest.importorskip("onnxruntime", reason="--backend onnx needs the ragembed[fast] extra")
    other, _ = demo("--backend", "onnx", "--quantize", "int8")
    assert "rebuilding collection" in other and "indexing" in other
