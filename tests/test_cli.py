"""The `ragembed` command, run as a user runs it: a real process, real files."""

from __future__ import annotations

import json

import pytest
from cli_runner import cli


@pytest.fixture()
def small_beir(tmp_path, scifact_dir):
    """A BEIR folder of 40 SciFact documents and the test queries that judge them."""
    folder = tmp_path / "mini"
    (folder / "qrels").mkdir(parents=True)
    corpus = (scifact_dir / "corpus.jsonl").read_text().splitlines()[:40]
    (folder / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
    ids = {json.loads(line)["_id"] for line in corpus}
    rows = [r for r in (scifact_dir / "qrels" / "test.tsv").read_text().splitlines()[1:] if r.split("\t")[1] in ids]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    (folder / "queries.jsonl").write_text((scifact_dir / "queries.jsonl").read_text())
    return folder


def test_search_follows_the_collections_backend_and_refuses_another(tmp_path, small_beir):
    pytest.importorskip("onnxruntime", reason="--backend onnx needs the ragembed[fast] extra")
    store = ["--store", "memory:./idx", "--json"]
    done = cli("index", str(small_beir), "--backend", "onnx", "--quantize", "int8", *store, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    title = json.loads((small_beir / "corpus.jsonl").read_text().splitlines()[3])
    found = cli("search", title["title"], "-k", "3", *store, cwd=tmp_path)  # no flags: the collection's
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)[0]["id"] == str(title["_id"])
    refused = cli("search", title["title"], "--backend", "torch", *store, cwd=tmp_path)
    assert refused.returncode == 2 and "--backend onnx --quantize int8" in refused.stderr, refused.stderr


@pytest.mark.colbert
@pytest.mark.parametrize("made", [{"pool_factor": 2}, {"drop_stop_words": True}])
def test_search_makes_tokens_like_the_collection_it_opens(tmp_path, made):
    """A collection indexed with pool_factor=2 (or without stop words) records it in its manifest;
    the CLI's ColBERT embedder follows the record instead of being refused for the default."""
    from ragembed import ColBERTEmbedder, Document, Retriever

    docs = [Document("a", "Mitochondria produce energy for the cell."), Document("b", "Ribosomes make proteins.")]
    with Retriever(f"memory:{tmp_path / 'idx'}", "colbert", multivector_embedder=ColBERTEmbedder(**made)) as r:
        r.index(docs)
    found = cli("search", "energy", "--store", "memory:./idx", "--strategy", "colbert", "--json", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)[0]["id"] == "a"


def test_search_encodes_queries_like_the_collection_it_opens(tmp_path):
    """A collection indexed with prompts (and a shorter window) records them; the CLI rebuilds
    that embedder from the record (Embedder.from_state), so its scores equal the Python ones."""
    from ragembed import DenseEmbedder, Document, Retriever

    made = {"query_prompt": "query: ", "document_prompt": "passage: ", "max_seq_length": 64}
    docs = [Document("a", "Mitochondria produce energy for the cell."), Document("b", "Ribosomes make proteins.")]
    with Retriever(f"memory:{tmp_path / 'idx'}", "dense", embedder=DenseEmbedder(**made, cache=False)) as r:
        r.index(docs)
        want = r.search("energy", k=2)
    found = cli("search", "energy", "--store", "memory:./idx", "--json", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    got = json.loads(found.stdout)
    assert [h["id"] for h in got] == [h.id for h in want]
    assert [h["score"] for h in got] == pytest.approx([h.score for h in want], abs=1e-6)


def test_search_rebuilds_only_the_embedders_its_strategy_uses(tmp_path):
    """A collection whose dense embedder is a class of the user's own is still searched with
    bm25 from the command line; an embedder the CLI cannot make is named, with the way out."""
    from ragembed import DenseEmbedder, Document, Retriever

    class TitleEmbedder(DenseEmbedder):
        """A user's own dense embedder class (the CLI cannot rebuild it)."""

    docs = [Document("a", "Mitochondria produce energy for the cell."), Document("b", "Ribosomes make proteins.")]
    with Retriever(f"memory:{tmp_path / 'idx'}", ["dense", "bm25"], embedder=TitleEmbedder(cache=False)) as r:
        r.index(docs)
    found = cli("search", "ribosomes", "--store", "memory:./idx", "--strategy", "bm25", "--json", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)[0]["id"] == "b"
    refused = cli("search", "ribosomes", "--store", "memory:./idx", "--strategy", "dense", cwd=tmp_path)
    assert refused.returncode == 2 and "is a TitleEmbedder, which the command line cannot make" in refused.stderr
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "note.txt").write_text("Bees make honey.")
    named = cli("index", "docs", "--store", "memory:./other", "--strategy", "colbert@colbert_b", cwd=tmp_path)
    assert named.returncode == 2 and "name the embedder 'colbert_b', which the command line cannot make" in named.stderr


def test_index_then_search_a_beir_folder(tmp_path, small_beir):
    done = cli(
        "index",
        str(small_beir),
        "--store",
        "memory:./idx",
        "--strategy",
        "hybrid",
        "--strategy",
        "binary",
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["indexed"] == 40
    title = json.loads((small_beir / "corpus.jsonl").read_text().splitlines()[7])
    found = cli(
        "search", title["title"], "--store", "memory:./idx", "--strategy", "hybrid", "-k", "3", "--json", cwd=tmp_path
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert len(hits) == 3 and hits[0]["id"] == str(title["_id"])
    binary = cli("search", title["title"], "--store", "memory:./idx", "--strategy", "binary", cwd=tmp_path)
    assert binary.returncode == 0 and binary.stdout.split()[2] == f"{title['_id']}:1"  # id:line of its passage


def test_index_a_jsonl_file_and_a_text_folder_with_filters(tmp_path):
    (tmp_path / "docs.jsonl").write_text(
        "\n".join(
            json.dumps(d)
            for d in [
                {"id": "a", "text": "Bees pollinate flowering plants.", "metadata": {"year": 2019}},
                {"id": "b", "text": "Bees make honey from nectar.", "metadata": {"year": 2022}},
            ]
        )
        + "\n"
    )
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "sub" / "rust.md").write_text("Rust has ownership and borrowing.")
    (notes / "go.txt").write_text("Go has goroutines and channels.")
    assert cli("index", "docs.jsonl", "--store", "memory:./idx", cwd=tmp_path).returncode == 0
    hits = json.loads(
        cli("search", "bees", "--store", "memory:./idx", "--filter", "year>=2020", "--json", cwd=tmp_path).stdout
    )
    assert [h["id"] for h in hits] == ["b"]
    assert cli("index", "notes", "--store", "memory:./idx", "--collection", "notes", cwd=tmp_path).returncode == 0
    hits = json.loads(
        cli(
            "search", "memory safety", "--store", "memory:./idx", "--collection", "notes", "--json", cwd=tmp_path
        ).stdout
    )
    assert hits[0]["id"] == "sub/rust.md"


def test_errors_name_the_problem_and_exit_2(tmp_path):
    missing = cli("index", "nowhere", cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": \n')
    bad = cli("index", "bad.jsonl", "--store", "memory:./idx", cwd=tmp_path)
    assert bad.returncode == 2 and "bad.jsonl:2: not valid JSON" in bad.stderr
    assert not (tmp_path / "idx").exists()  # nothing half-written
    empty = cli("search", "anything", "--store", "memory:./none", cwd=tmp_path)
    assert empty.returncode == 2 and "index documents" in empty.stderr


def test_the_demo_reranks_turbo4_tokens_where_the_store_keeps_them_and_float32_elsewhere(tmp_path):
    from ragembed import MemoryStore
    from ragembed.cli import demo_strategies
    from ragembed.stores.qdrant import QdrantEdgeStore, QdrantStore

    with QdrantEdgeStore(tmp_path, "demo") as edge:
        assert demo_strategies(edge)[-1] == "colbert+dense:turbo4"
    assert demo_strategies(MemoryStore())[-1] == "colbert+dense"
    assert demo_strategies(QdrantStore(path=":memory:"))[-1] == "colbert+dense"
    assert "colbert" not in demo_strategies(MemoryStore())  # MaxSim over every document: the slow row it replaces
