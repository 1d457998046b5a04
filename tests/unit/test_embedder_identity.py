"""An embedder's identity (the embeddings cache's key) without a model: what it is made of, and
the refusal for an embedder that gives nothing to tell two of them apart."""

from __future__ import annotations

import numpy as np
import pytest

from ragembed.embedders.base import Embedder
from ragembed.embedders.settings import Setting
from ragembed.strategies import Using
from ragembed.types import DenseEmbeddings, EmbeddingKind


class Signed(Embedder):
    """A model-free embedder whose one setting changes its vectors."""

    kind = EmbeddingKind.DENSE

    def __init__(self, sign: float, cache: object = False) -> None:
        super().__init__(cache=cache)
        self.sign = sign

    @property
    def dim(self) -> int:
        return 2

    def settings(self):
        return (Setting("sign", self.sign),)

    def _encode(self, texts, role):
        return DenseEmbeddings(np.full((len(texts), 2), self.sign, np.float32))


class Bare(Signed):
    """No settings, no model: nothing tells two of them apart."""

    def settings(self):
        return ()


def test_embedders_that_encode_otherwise_never_share_a_cache_key():
    assert Signed(1.0).identity != Signed(-1.0).identity
    assert Signed(1.0).identity == Signed(1.0).identity
    assert "Signed" in Signed(1.0).identity  # the class is part of it


def test_an_embedder_with_nothing_to_tell_instances_apart_must_say_what_decides_its_vectors(tmp_path):
    with pytest.raises(NotImplementedError, match="override `identity`"):
        Bare(1.0, cache=tmp_path).embed_documents(["a text"])  # the cache asks for its key


def test_embedder_names_given_as_kinds_read_as_their_default_names():
    using = Using(dense=EmbeddingKind.SPARSE)
    assert using.dense == "sparse" and using.field("dense", EmbeddingKind.DENSE) == "dense__sparse"


def test_without_a_cache_no_identity_is_needed():
    assert Bare(1.0, cache=False).embed_documents(["a text"]).data.tolist() == [[1.0, 1.0]]
