"""Embedders held by name: two ColBERT models (and two dense ones) in one Retriever, each field
saying which embedder it comes from, each recorded and restored by its name."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ragembed import ColBERTEmbedder, DenseEmbedder, Document, MemoryStore, Retriever
from ragembed.errors import EncoderMismatchError, InvalidInputError

DOCS = [
    Document("a", "Mitochondria produce energy for the cell."),
    Document("b", "Ribosomes make proteins from amino acids."),
    Document("c", "Bees pollinate flowering plants and make honey."),
    Document("d", "The liver filters toxins from the blood."),
    Document("e", "Photosynthesis turns light into chemical energy."),
]
QUERIES = ["where does the cell get its energy?", "how is honey made?", "what cleans the blood?"]


@pytest.fixture(scope="module")
def other_colbert():
    pytest.importorskip("pylate", reason="ColBERT needs the ragembed[colbert] extra")
    return ColBERTEmbedder(seed=1, cache=False)  # another (randomly seeded) projection head: other vectors


@pytest.mark.colbert
def test_two_colbert_models_in_one_collection_each_search_like_a_collection_of_their_own(
    tmp_path, colbert_embedder, other_colbert
):
    uri = f"memory:{tmp_path}"
    both = Retriever(
        uri,
        ["colbert", "colbert@colbert_b"],
        multivector_embedder=colbert_embedder,
        embedders={"colbert_b": other_colbert},
    )
    with both:
        both.index(DOCS)
        schema = both.store.schema
        assert schema.names == ["colbert", "colbert__colbert_b"]
        assert [f.source for f in schema.fields] == ["multivector", "colbert_b"]
        assert schema.encoders["colbert_b"]["seed"] == 1 and schema.encoders["multivector"]["seed"] == 0
        got = {
            s: [[(h.id, round(h.score, 4)) for h in hits] for hits in both.search_many(QUERIES, k=3, strategy=s)]
            for s in both.strategies
        }
    alone = {
        "colbert": Retriever(MemoryStore(), "colbert", multivector_embedder=colbert_embedder),
        "colbert@colbert_b": Retriever(MemoryStore(), "colbert", multivector_embedder=other_colbert),
    }
    for name, retriever in alone.items():
        retriever.index(DOCS)
        assert got[name] == [[(h.id, round(h.score, 4)) for h in hits] for hits in retriever.search_many(QUERIES, k=3)]
    assert got["colbert"] != got["colbert@colbert_b"]  # two models, two rankings

    # Reopened, each embedder is checked against its own record: the wrong head under a name is refused.
    with pytest.raises(EncoderMismatchError, match=r"seed=1.*ColBERTEmbedder\(seed=1\)"):
        Retriever(uri, "colbert@colbert_b", embedders={"colbert_b": colbert_embedder})
    # The command line rebuilds the named embedder from the collection's record.
    found = subprocess.run(
        [
            sys.executable,
            "-m",
            "ragembed.cli",
            "search",
            QUERIES[1],
            "--store",
            uri,
            "--strategy",
            "colbert@colbert_b",
            "-k",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert found.returncode == 0, found.stderr
    assert [(h["id"], round(h["score"], 4)) for h in json.loads(found.stdout)] == got["colbert@colbert_b"][1]


def test_two_dense_models_by_name_and_a_hybrid_that_names_its_dense_one(scifact_docs, dense_embedder):
    short = DenseEmbedder(max_seq_length=32, cache=False)  # another encoder: texts cut at 32 word pieces
    retriever = Retriever(
        MemoryStore(), ["dense", "dense@short", "hybrid@short"], embedder=dense_embedder, embedders={"short": short}
    )
    retriever.index(scifact_docs[:40])
    assert retriever.store.schema.names == ["dense", "dense__short", "bm25"]
    assert set(retriever.store.schema.encoders) == {"dense", "short", "sparse"}
    text = scifact_docs[7].text
    tail = " ".join(text.split()[-40:])  # words past the short model's 32 word pieces
    full, cut = (retriever.search(tail, k=5, strategy=s) for s in ("dense", "dense@short"))
    assert full[0].id == scifact_docs[7].id  # the whole text was embedded
    assert [(h.id, h.score) for h in full] != [(h.id, h.score) for h in cut]  # another embedder's field
    assert retriever.search(text, k=1, strategy="hybrid@short")[0].id == scifact_docs[7].id


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (
            lambda e: Retriever(MemoryStore(), "dense@e5", embedder=e),
            "embedder named 'e5', which this Retriever was not given",
        ),
        (
            lambda e: Retriever(MemoryStore(), "colbert@e5", embedders={"e5": e}),
            "multivector vectors from the embedder named 'e5', which makes dense",
        ),
        (lambda e: Retriever(MemoryStore(), "dense", embedders={"col our": e}), "embedder name 'col our'"),
        (
            lambda e: Retriever(MemoryStore(), "dense", embedder=e, embedders={"dense": DenseEmbedder(cache=False)}),
            "two embedders named 'dense'",
        ),
        (
            lambda e: Retriever(MemoryStore(), "dense", embedders={"e5": "all-MiniLM"}),
            "is 'all-MiniLM', not an Embedder",
        ),
    ],
)
def test_embedders_that_do_not_fit_their_names_are_refused_before_anything_is_stored(dense_embedder, make, says):
    with pytest.raises(InvalidInputError, match=says):
        make(dense_embedder)
