"""Rerankers: a search's candidates scored again, client-side, by a model that reads more than the
first stage could afford (a Rerank plan node, ragembed.search.plan, holds a scorer from here).

    CrossEncoderReranker(path)        a sentence-transformers cross-encoder (ragembed finetune
                                      reranker trains one): query and text read together
    CrossEncoderScorer(reranker, q)   it, bound to one query: a candidate split into passages is
                                      scored by its best passage, which the hit then names
    MaxSimScorer(field, tokens)       ColBERT MaxSim of the query's tokens over each candidate's
                                      stored token vectors (read by the store, no model run)
    FusedScorer(scorers)              several scorers' rankings of the candidates fused by
                                      reciprocal rank (their scores are on different scales)

Scoring is client-side on purpose: no engine runs a cross-encoder, and MaxSim over a few hundred
candidates' tokens is a matrix product.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ragembed.embedders.models import check_model_location, load_error, quiet_loading, resolve_model_name
from ragembed.errors import InvalidInputError, ModelLoadError, TruncationWarning
from ragembed.search.plan import CandidateScorer, Scored
from ragembed.search.ranking import rrf_scores, top_keys
from ragembed.types import Hit, check_positive

TRAIN_ONE = "train one with `ragembed finetune reranker DATASET --output DIR` (ragembed.finetune.train_reranker)"


class CrossEncoderReranker:
    """A cross-encoder that scores (query, text) pairs: a sentence-transformers CrossEncoder
    folder with one output (what `ragembed finetune reranker` saves), or a hub name.

    Args:
        model: the folder (or hub name) of the cross-encoder.
        batch_size: pairs scored per forward pass.
        max_length: word pieces of a (query, text) pair the model reads (default: the model's
            own); longer pairs are cut, with a TruncationWarning naming how many.

    Raises:
        ModelLoadError: `model` is not a cross-encoder (a bi-encoder or ColBERT folder, or no
            model at all): the message names what was found.
    """

    def __init__(self, model: str, *, batch_size: int = 32, max_length: int | None = None) -> None:
        if not isinstance(model, str) or not model.strip():
            raise InvalidInputError(f"a reranker model is a folder or hub name, got {model!r}; {TRAIN_ONE}")
        check_positive("batch_size", batch_size, integer=True)
        if max_length is not None:
            check_positive("max_length", max_length, integer=True)
        check_model_location(model)
        path = resolve_model_name(model)
        if Path(path).is_dir():
            refuse_non_cross_encoder(Path(path), model)
        from sentence_transformers.cross_encoder import CrossEncoder

        try:
            with quiet_loading():
                self.model = CrossEncoder(path, max_length=max_length)
        except Exception as exc:
            raise load_error(model, exc) from exc
        if self.model.num_labels != 1:
            raise ModelLoadError(
                f"{model!r} is a cross-encoder with {self.model.num_labels} outputs (a classifier); a reranker "
                f"scores relevance with one output: {TRAIN_ONE}"
            )
        self.name = model
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"CrossEncoderReranker({self.name!r})"

    @property
    def max_length(self) -> int:
        return int(self.model.max_length)

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """The relevance score of each text to `query` (higher is more relevant)."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        pairs = [(query, text) for text in texts]
        self._warn_cut(query, texts)
        scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(scores, dtype=np.float32).reshape(len(texts))

    def _warn_cut(self, query: str, texts: Sequence[str]) -> None:
        lengths = [len(ids) for ids in self.model.tokenizer([query] * len(texts), list(texts))["input_ids"]]
        cut = sum(n > self.max_length for n in lengths)
        if cut:
            warnings.warn(
                f"reranker {self.name!r}: {cut} of {len(texts)} (query, text) pairs are longer than its "
                f"{self.max_length} word pieces (longest {max(lengths)}) and were cut; index in passages "
                "(the reranker then reads each passage) or pass a larger max_length",
                TruncationWarning,
                stacklevel=3,
            )


def refuse_non_cross_encoder(folder: Path, given: str) -> None:
    """Refuse a model folder that is not a cross-encoder, naming what it is and what to use it for."""
    config_file = folder / "config.json"
    modules_file = folder / "modules.json"
    if modules_file.is_file():
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        if any("pylate" in str(m.get("type", "")) for m in modules):
            raise ModelLoadError(
                f"{given!r} is a ColBERT (PyLate) model, not a cross-encoder: use it as the multi-vector embedder "
                "(ColBERTEmbedder(model=...), CLI --colbert-model) and rerank by MaxSim over its tokens "
                f"('hybrid>colbert'); for 'rerank', {TRAIN_ONE}"
            )
        raise ModelLoadError(
            f"{given!r} is a bi-encoder (a sentence-transformers embedding model), not a cross-encoder: use it "
            f"as the dense embedder (DenseEmbedder(model=...), CLI --model); for a reranker, {TRAIN_ONE}"
        )
    if not config_file.is_file():
        raise ModelLoadError(f"{given!r} holds no config.json, so it is no saved model folder; {TRAIN_ONE}")
    try:
        architectures = json.loads(config_file.read_text(encoding="utf-8")).get("architectures") or []
    except (json.JSONDecodeError, AttributeError) as exc:
        raise ModelLoadError(f"{given!r}: config.json is not a model configuration ({exc}); {TRAIN_ONE}") from exc
    if not any(str(a).endswith("ForSequenceClassification") for a in architectures):
        raise ModelLoadError(
            f"{given!r} is a {', '.join(map(str, architectures)) or 'model of unknown architecture'}, not a "
            f"cross-encoder (a *ForSequenceClassification model); {TRAIN_ONE}"
        )


@dataclass(frozen=True)
class CrossEncoderScorer:
    """A cross-encoder bound to one query: each candidate's passages scored (a whole document
    where it is not split), the candidate scored by its best passage."""

    reranker: CrossEncoderReranker
    query: str
    fields: tuple[str, ...] = field(default=(), init=False)

    def score(self, hits: Sequence[Hit], vectors: Mapping[str, Mapping[str, np.ndarray]]) -> list[Scored]:
        pieces = [_pieces(hit) for hit in hits]
        flat = self.reranker.score(self.query, [text for texts in pieces for text in texts])
        scored, start = [], 0
        for hit, texts in zip(hits, pieces):
            own = flat[start : start + len(texts)]
            start += len(texts)
            best = int(np.argmax(own))
            scored.append(Scored(float(own[best]), best if hit.passage_map is not None else None))
        return scored


def _pieces(hit: Hit) -> list[str]:
    """What a cross-encoder reads of a hit: its passages, or its whole text."""
    if hit.passage_map is None:
        return [hit.text]
    return [hit.text[start:end] for start, end in hit.passage_map.spans.tolist()]


@dataclass(frozen=True)
class MaxSimScorer:
    """ColBERT MaxSim: for each query token its best dot product over a candidate's stored token
    vectors, summed (the same score the 'colbert' strategies rank by)."""

    field: str
    query_tokens: np.ndarray

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,)

    def score(self, hits: Sequence[Hit], vectors: Mapping[str, Mapping[str, np.ndarray]]) -> list[Scored]:
        stored = vectors[self.field]
        return [Scored(_maxsim(self.query_tokens, stored[h.id]) if h.id in stored else float("-inf")) for h in hits]


def _maxsim(query: np.ndarray, tokens: np.ndarray) -> float:
    return float((query @ tokens.T).max(axis=1).sum())


@dataclass(frozen=True)
class FusedScorer:
    """Several scorers' rankings of the same candidates fused by reciprocal rank (rrf_k as in
    search plans' fusions), each ranking in score-then-id order; a hit's passage is the first
    scorer's that names one."""

    scorers: tuple[CandidateScorer, ...]
    rrf_k: int = 60

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for scorer in self.scorers for name in scorer.fields))

    def score(self, hits: Sequence[Hit], vectors: Mapping[str, Mapping[str, np.ndarray]]) -> list[Scored]:
        each = [scorer.score(hits, vectors) for scorer in self.scorers]
        rankings = [top_keys({h.id: s.score for h, s in zip(hits, scored)}, len(hits)) for scored in each]
        fused = rrf_scores(rankings, self.rrf_k)
        named = [next((s[i].passage for s in each if s[i].passage is not None), None) for i in range(len(hits))]
        return [Scored(fused[h.id], passage) for h, passage in zip(hits, named)]
