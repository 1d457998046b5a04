"""Bad input, class by class, as a hostile new user gives it: invalid Unicode, wrong types at the
front door, out-of-range options, malformed evaluation data, filters that would mean something
else, and refusals whose message must lead to a fix. Every case ends in a ragembed error (or exit
status 2 with a message and no traceback) and changes nothing stored."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import numpy as np
import pytest
from cli_runner import cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragembed import Document, EmbeddingCache, Matryoshka, MemoryStore, Quantized, Range, Retriever, VectorField
from ragembed.errors import InvalidInputError, RagembedError, SchemaMismatchError
from ragembed.evaluation import BeirDataset, evaluate, ir_metrics, load_beir, sample
from ragembed.search.filters import validate_filter
from ragembed.strategies import Hybrid, parse_strategy

DOCS = [
    Document("a", "Bees pollinate flowering plants.", {"year": 2019}),
    Document("b", "Bees make honey from nectar.", {"year": 2021}),
    Document("c", "Rust has ownership and borrowing.", {"year": 2023}),
]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_exit_2(done: subprocess.CompletedProcess, message: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and message in done.stderr, done.stderr[-2000:]


@pytest.fixture()
def saved(tmp_path):
    """A saved memory store with three documents, and a check that nothing about it changed."""
    uri = f"memory:{tmp_path / 'idx'}"
    with Retriever(uri, "bm25") as r:
        r.index(DOCS)
    files = sorted(p.relative_to(tmp_path) for p in (tmp_path / "idx").rglob("*"))
    yield uri
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "idx").rglob("*")) == files  # no staging left
    with Retriever(uri, "bm25") as r:
        assert r.count() == 3 and [h.id for h in r.search("honey", k=1)] == ["b"]


# --- text that is not valid Unicode (lone surrogates) -------------------------------------------
def with_surrogate(text: str, position: int, surrogate: int) -> str:
    position %= len(text) + 1
    return text[:position] + chr(surrogate) + text[position:]


surrogated = st.builds(
    with_surrogate,
    st.text(min_size=1, max_size=30).filter(lambda s: s.strip() and "\x00" not in s),
    st.integers(0, 40),
    st.integers(0xD800, 0xDFFF),
)


@SETTINGS
@given(bad=surrogated)
def test_lone_surrogates_anywhere_are_refused_and_nothing_is_written(saved, bad):
    with Retriever(saved, "bm25") as r:
        for make in (
            lambda: Document("new", bad),
            lambda: Document(bad, "text"),
            lambda: Document("new", "text", {bad: 1}),
            lambda: Document("new", "text", {"k": bad}),
            lambda: Document("new", "text", {"k": ["ok", bad]}),
        ):
            with pytest.raises(InvalidInputError, match="lone surrogate"):
                r.index([make()])
        with pytest.raises(InvalidInputError, match="lone surrogate"):
            r.search(bad)
        with pytest.raises(InvalidInputError, match="lone surrogate"):
            r.search("honey", filter={bad: 1})
        with pytest.raises(InvalidInputError, match="lone surrogate"):
            r.search("honey", filter={"year": [bad]})
    with pytest.raises(InvalidInputError, match="collection name"):
        Retriever("memory", collection=bad)


def test_a_corpus_file_with_a_surrogate_escape_exits_2_naming_the_line(tmp_path, saved):
    (tmp_path / "docs.jsonl").write_text('{"id": "x", "text": "fine"}\n{"id": "y", "text": "bad \\ud800 text"}\n')
    done = cli("index", "docs.jsonl", "--store", saved, "--strategy", "bm25", cwd=tmp_path)
    assert_exit_2(done, "docs.jsonl:2: text of document 'y' is not valid Unicode text")
    query = cli("search", "\udcff honey", "--store", saved, "--strategy", "bm25", cwd=tmp_path)
    assert_exit_2(query, "lone surrogate")


def test_the_embedding_cache_never_sees_invalid_text(tmp_path, dense_embedder):
    from ragembed import DenseEmbedder

    embedder = DenseEmbedder(cache=EmbeddingCache(tmp_path))
    with pytest.raises(InvalidInputError, match="lone surrogate"):
        embedder.embed_documents(["fine", "bad \ud83d"])


# --- wrong types at the front door --------------------------------------------------------------
def test_wrong_types_at_the_front_door(saved):
    with Retriever(saved, "bm25") as r:
        with pytest.raises(InvalidInputError, match="not one Document; wrap it"):
            r.index(Document("x", "one document"))
        for wrong in ({"id": "x"}, 42, "text", b"bytes"):
            with pytest.raises(InvalidInputError):
                r.index(wrong)
        with pytest.raises(InvalidInputError, match="query must be a string"):
            r.search(["a list"])
    with pytest.raises(InvalidInputError, match="store must be a store URI"):
        Retriever(None)
    with pytest.raises(InvalidInputError, match="store must be a store URI"):
        Retriever(42, "dense")
    with pytest.raises(InvalidInputError, match="strategy must be a name"):
        Retriever(MemoryStore(), None)
    with pytest.raises(InvalidInputError, match="strategy must be a name"):
        Retriever(MemoryStore(), 3)


def test_an_index_limit_that_is_not_a_positive_whole_number_exits_2(tmp_path, saved):
    (tmp_path / "docs.jsonl").write_text('{"id": "x", "text": "fine"}\n')
    done = cli("index", "docs.jsonl", "--store", saved, "--strategy", "bm25", "--limit", "0", cwd=tmp_path)
    assert_exit_2(done, "--limit must be a positive whole number, got 0")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Quantized("int4"), "Quantized precision 'int4' is not one of"),
        (lambda: Quantized("binary", oversampling=float("nan")), "oversampling must be a positive number"),
        (lambda: Quantized("binary", oversampling=True), "oversampling must be a positive number"),
        (lambda: VectorField("v", "dense", 8, precision="fp16"), "precision 'fp16' is not one of"),
        (lambda: VectorField("v", "tensor", 8), "kind 'tensor' is not one of"),
        (lambda: Matryoshka(64.5), "Matryoshka dim must be a positive whole number, got 64.5"),
        (lambda: Matryoshka(0), "Matryoshka dim must be a positive whole number"),
        (lambda: Hybrid(candidates=2.5), "candidates must be a positive whole number"),
        (lambda: Hybrid(rrf_k=-1), "rrf_k"),
        (lambda: parse_strategy("funnel:64.5"), "takes a whole number of dimensions"),
        (lambda: Range(gte=float("nan")), "finite number"),
        (lambda: Range(lt=float("inf")), "finite number"),
        (lambda: Range(gte=5, lt=3), "can match no value"),
        (lambda: Range(gt=3, lte=3), "can match no value"),
        (lambda: validate_filter({"score": float("nan")}), "matches nothing"),
    ],
)
def test_options_out_of_range_are_ragembed_errors(make, message):
    with pytest.raises(RagembedError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_sample_sizes_must_be_whole_positive_numbers(scifact_dir):
    dataset = load_beir(scifact_dir, "test")
    for bad in (1.5, 0, -2, True, "10"):
        with pytest.raises(InvalidInputError, match="sample size"):
            sample(dataset, bad)
    with pytest.raises(InvalidInputError, match="distractors_per_query"):
        sample(dataset, 5, distractors_per_query=-1)


@pytest.mark.parametrize(
    "kind, option, value, message",
    [
        ("dense", "--hard-negatives", "-1", "hard_negatives must be a whole number >= 0"),
        ("colbert", "--hard-negatives", "0", "hard_negatives must be a whole number >= 1"),
        ("dense", "--epochs", "0", "epochs must be a positive whole number"),
        ("dense", "--batch-size", "1", "batch_size must be at least 2"),
        ("colbert", "--lr", "0", "learning_rate must be a positive number"),
        ("dense", "--lr", "2", "learning_rate 2.0 is not in (0, 1)"),
        ("dense", "--max-seq-length", "0", "max_seq_length must be a positive whole number"),
        ("colbert", "--dim", "0", "dim must be a positive whole number"),
        ("dense", "--dims", "384,0", "must be distinct whole numbers >= 1"),
        ("dense", "--dim-weights", "64=-1", "dim_weights {64: -1.0} must be positive"),
        ("dense", "--seed", "-5", "seed must be a whole number >= 0"),
    ],
)
def test_finetune_options_out_of_range_exit_2_before_any_training(tmp_path, small_beir, kind, option, value, message):
    done = cli("finetune", kind, str(small_beir), "--output", str(tmp_path / "model"), option, value, cwd=tmp_path)
    assert_exit_2(done, message)
    assert not (tmp_path / "model").exists()


# --- evaluation data ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_dataset():
    return BeirDataset("tiny", "test", DOCS, {"q1": "honey", "q2": "rust"}, {"q1": {"b": 1}, "q2": {"c": 1}})


def test_relevance_grades_as_pandas_and_numpy_give_them_are_read_as_integers(tiny_dataset):
    run = {"q1": {"b": 2.0, "a": 1.0}, "q2": {"a": 1.0}}
    expected = ir_metrics(run, {"q1": {"b": 1}, "q2": {"c": 1}})[1]
    for grades in ({"q1": {"b": np.int64(1)}, "q2": {"c": np.int32(1)}}, {"q1": {"b": 1.0}, "q2": {"c": 1.0}}):
        assert ir_metrics(run, grades)[1] == expected
    data = BeirDataset("t", "test", DOCS, {"q1": "honey"}, {"q1": {"b": np.int64(2)}})
    assert type(data.qrels["q1"]["b"]) is int


@pytest.mark.parametrize(
    "qrels, message",
    [
        ({"q1": {"b": "1"}}, "relevance grade '1' (str) is not a whole number"),
        ({"q1": {"b": 0.5}}, "relevance grade 0.5 (float) is not a whole number"),
        ({"q1": {"b": True}}, "relevance grade True (bool)"),
        ({"q1": {"b": None}}, "relevance grade None"),
        ({}, "qrels is empty"),
        ({"q1": {}}, "non-empty"),
        ({"q1": {7: 1}}, "document id 7 is not a string"),
        ([("q1", "b", 1)], "qrels must be a mapping"),
    ],
)
def test_malformed_qrels_are_refused(qrels, message):
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ir_metrics({"q1": {"b": 1.0}}, qrels)
    with pytest.raises(InvalidInputError):
        BeirDataset("t", "test", DOCS, {"q1": "honey"}, qrels)


def test_judgments_on_queries_or_documents_that_are_not_there_are_refused():
    with pytest.raises(InvalidInputError, match="queries that are not in the query set"):
        BeirDataset("t", "test", DOCS, {"q1": "honey"}, {"q1": {"b": 1}, "q9": {"a": 1}})
    with pytest.raises(InvalidInputError, match=r"documents that are not in the corpus \(first: \['zz'\]\)"):
        BeirDataset("t", "test", DOCS, {"q1": "honey"}, {"q1": {"b": 1, "zz": 1}})


def test_qrels_files_naming_documents_outside_the_corpus_name_the_file(tmp_path, small_beir):
    import shutil

    folder = shutil.copytree(small_beir, tmp_path / "beir")
    with open(folder / "qrels" / "test.tsv", "a") as qrels:
        qrels.write(f"{next(iter(load_beir(small_beir, 'test').queries))}\tno-such-doc\t1\n")
    with pytest.raises(InvalidInputError, match=r"qrels/test.tsv: 1 document ids are not in .*corpus.jsonl"):
        load_beir(folder, "test")


def test_evaluating_a_store_that_holds_more_than_the_corpus(tiny_dataset, dense_embedder):
    """The ragas text metrics read a hit's own text when the dataset's corpus lacks it."""
    r = Retriever(MemoryStore(), "dense", embedder=dense_embedder)
    r.index([*DOCS, Document("extra", "Honey is sweet and golden.")])
    (run,) = evaluate(r, tiny_dataset, ["dense"], k=3)
    assert 0 <= run.metrics["context_precision_nonllm"] <= 1 and run.metrics["ndcg@10"] > 0


# --- filters ------------------------------------------------------------------------------------
def test_repeated_cli_filter_keys_combine_and_a_conflict_is_refused(tmp_path, saved):
    both = cli(
        "search",
        "bees",
        "--store",
        saved,
        "--strategy",
        "bm25",
        "--filter",
        "year>=2020",
        "--filter",
        "year<2022",
        "--json",
        cwd=tmp_path,
    )
    assert both.returncode == 0, both.stderr
    assert [h["id"] for h in json.loads(both.stdout)] == ["b"]  # 2019 and 2023 are both out
    assert_exit_2(
        cli(
            "search",
            "bees",
            "--store",
            saved,
            "--strategy",
            "bm25",
            "--filter",
            "year=2019",
            "--filter",
            "year>2018",
            cwd=tmp_path,
        ),
        "is given twice",
    )
    assert_exit_2(
        cli(
            "search",
            "bees",
            "--store",
            saved,
            "--strategy",
            "bm25",
            "--filter",
            "year>2018",
            "--filter",
            "year>2020",
            cwd=tmp_path,
        ),
        "the bound gt is given twice",
    )


@pytest.mark.parametrize("spec", ["year=>2020", "year=<2020", "year==2020", "year>=>1"])
def test_a_mistyped_cli_operator_is_not_read_as_a_string_equality(tmp_path, saved, spec):
    assert_exit_2(
        cli("search", "bees", "--store", saved, "--strategy", "bm25", "--filter", spec, cwd=tmp_path),
        "is not an operator",
    )


def test_llama_index_filters_that_would_mean_something_else_are_refused():
    from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters
    from llama_index.retrievers.ragembed import to_ragembed_filter

    excluded = MetadataFilters(filters=[MetadataFilter(key="lang", value="en")], condition=FilterCondition.NOT)
    with pytest.raises(InvalidInputError, match="cannot negate"):
        to_ragembed_filter(excluded)
    with pytest.raises(InvalidInputError, match="takes a list of values"):
        to_ragembed_filter(
            MetadataFilters(filters=[MetadataFilter(key="lang", value="en", operator=FilterOperator.IN)])
        )
    bounds = MetadataFilters(
        filters=[
            MetadataFilter(key="y", value=2019, operator=FilterOperator.GTE),
            MetadataFilter(key="y", value=2021, operator=FilterOperator.LT),
        ]
    )
    assert to_ragembed_filter(bounds) == {"y": Range(gte=2019, lt=2021)}
    clash = MetadataFilters(filters=[MetadataFilter(key="y", value=2019), MetadataFilter(key="y", value=2020)])
    with pytest.raises(InvalidInputError, match="given twice"):
        to_ragembed_filter(clash)


# --- refusals that lead to a fix ----------------------------------------------------------------
def test_a_strategy_switch_is_refused_before_anything_is_embedded_and_recreate_does_it(tmp_path):
    from ragembed import DenseEmbedder

    uri = f"memory:{tmp_path / 'idx'}"
    with Retriever(uri, "bm25") as r:
        r.index(DOCS)
    cache = EmbeddingCache(tmp_path / "cache")
    with Retriever(uri, ["bm25", "dense"], embedder=DenseEmbedder(cache=cache)) as r:
        with pytest.raises(SchemaMismatchError, match=r"without the vector fields \['dense'\].*--recreate"):
            r.index(DOCS)
        assert r.count() == 3
    with sqlite3.connect(cache.path) as db:  # nothing was embedded
        assert db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 0
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in DOCS))
    again = cli("index", "docs.jsonl", "--store", uri, "--strategy", "bm25", "--strategy", "binary", cwd=tmp_path)
    assert_exit_2(again, "--recreate")
    done = cli(
        "index",
        "docs.jsonl",
        "--store",
        uri,
        "--strategy",
        "bm25",
        "--strategy",
        "binary",
        "--recreate",
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"] == 3
    with Retriever(uri, "binary") as r:
        assert r.search("honey", k=1)[0].id == "b"
