"""The rules around inference backends that need no model: which combinations run, what the
cache key and the collection state say, and the errors that name the fix."""

from __future__ import annotations

import re
import sys

import pytest

from ragembed.embedders.backends import Runtime
from ragembed.embedders.base import Embedder
from ragembed.errors import InvalidInputError, MissingDependencyError
from ragembed.types import EmbeddingKind


@pytest.mark.parametrize(
    ("backend", "quantize", "device", "says"),
    [
        ("tensorrt", None, None, "backend must be one of torch, onnx, openvino"),
        ("onnx", "int4", None, "quantize must be None (fp32) or 'int8'"),
        ("torch", "int8", None, "needs backend='onnx'"),
        ("openvino", "int8", None, "needs backend='onnx'"),
        ("onnx", None, "cuda", "runs on the CPU"),
    ],
)
def test_combinations_that_cannot_run_are_refused_with_the_fix(backend, quantize, device, says):
    with pytest.raises(InvalidInputError, match=re.escape(says)):
        Runtime.checked(backend, quantize, device)


def test_runnable_combinations_pass():
    for backend, quantize, device in [("torch", None, "cuda"), ("onnx", "int8", "cpu"), ("openvino", None, None)]:
        Runtime.checked(backend, quantize, device)


@pytest.mark.parametrize(("backend", "package"), [("onnx", "onnxruntime"), ("openvino", "openvino")])
def test_a_missing_runtime_names_the_extra(monkeypatch, backend, package):
    monkeypatch.setitem(sys.modules, package, None)  # what Python does for a package that is absent
    with pytest.raises(MissingDependencyError, match=r"ragembed\[fast\]"):
        Runtime.checked(backend, None, None)


class RuntimeOnly(Embedder):
    """An embedder whose only settings are its runtime: what the settings rules see, no model."""

    kind = EmbeddingKind.DENSE

    def __init__(self, backend: str = "torch", quantize: str | None = None, show_progress: bool = False) -> None:
        super().__init__(cache=False, show_progress=show_progress)
        self.runtime = Runtime.checked(backend, quantize, None)

    @property
    def dim(self) -> int:
        return 4

    def settings(self):
        return self.runtime.settings()

    def _encode(self, texts, role):
        raise AssertionError("the rules encode nothing")


def test_every_backend_and_precision_has_its_own_cache_key():
    runtimes = [("torch", None), ("onnx", None), ("onnx", "int8"), ("openvino", None)]
    keys = {RuntimeOnly(backend, quantize).identity for backend, quantize in runtimes}
    assert len(keys) == 4


def test_a_collection_refuses_queries_from_another_backend_or_precision():
    indexed = {"model": "m", **RuntimeOnly("onnx", "int8").encoder_state()}
    same = RuntimeOnly("onnx", "int8")
    assert same.restored(indexed) is same
    with pytest.raises(InvalidInputError, match=r"quantize='int8'.*--quantize int8"):
        RuntimeOnly("onnx").restored(indexed)
    with pytest.raises(InvalidInputError, match=r"backend='onnx', quantize='int8'.*--backend onnx --quantize int8"):
        RuntimeOnly().restored(indexed)


def test_collections_from_before_backends_count_as_torch_fp32():
    RuntimeOnly().restored({"model": "m"})
    with pytest.raises(InvalidInputError, match="backend='torch'"):
        RuntimeOnly("onnx").restored({"model": "m"})


def test_an_embedder_is_rebuilt_from_its_record_with_the_options_given():
    rebuilt = RuntimeOnly.from_state({"model": "m", "backend": "onnx", "quantize": "int8"}, show_progress=True)
    assert (rebuilt.runtime, rebuilt.show_progress) == (Runtime("onnx", "int8"), True)
    assert RuntimeOnly.from_state({"backend": "onnx"}, backend="torch").runtime == Runtime()
