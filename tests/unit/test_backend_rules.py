"""The rules around inference backends that need no model: which combinations run, what the
cache key and the collection state say, and the errors that name the fix."""

from __future__ import annotations

import re
import sys

import pytest

from ragembed.embedders.backends import Runtime
from ragembed.errors import InvalidInputError, MissingDependencyError


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


def test_every_backend_and_precision_has_its_own_cache_key():
    keys = {Runtime(b, q).identity for b, q in [("torch", None), ("onnx", None), ("onnx", "int8"), ("openvino", None)]}
    assert len(keys) == 4
    assert Runtime().identity == ""  # caches written before backends existed stay valid


def test_a_collection_refuses_queries_from_another_backend_or_precision():
    indexed = {"model": "m", **Runtime("onnx", "int8").state()}
    Runtime("onnx", "int8").check_same(indexed, "DenseEmbedder")
    with pytest.raises(InvalidInputError, match=r"--backend onnx --quantize int8"):
        Runtime("onnx").check_same(indexed, "DenseEmbedder")
    with pytest.raises(InvalidInputError, match=r"backend='onnx', quantize='int8'"):
        Runtime().check_same(indexed, "DenseEmbedder")


def test_collections_from_before_backends_count_as_torch_fp32():
    Runtime().check_same({"model": "m"}, "DenseEmbedder")
    with pytest.raises(InvalidInputError, match="backend='torch'"):
        Runtime("onnx").check_same({"model": "m"}, "DenseEmbedder")
