"""Inference backends: a sentence-transformers model's transformer run by torch, ONNX Runtime or
OpenVINO, fp32 or int8.

Why not sentence-transformers' own `backend="onnx"` / `"openvino"`: both load through optimum, and
the served optimum packages cannot be installed beside this project's pins (optimum-onnx 0.1.0
requires transformers<4.58, optimum-intel 2.2.0 requires huggingface-hub<1.22 plus torchvision).
So the transformer is exported here with `torch.onnx.export` (checked by the tests to reproduce the
torch vectors to 1e-5), fused by ONNX Runtime's own transformer optimizer, optionally quantized by
its `quantize_dynamic`, and cached under the embeddings cache folder. In the loaded model only
`model[0].auto_model` is replaced, by a module that runs the exported graph: sentence-transformers
(and PyLate's ColBERT, a subclass) still tokenise, sort by length, batch, pool, project and
normalise exactly as with torch. That is the seam sentence-transformers' own backends use.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from ragembed.embedders.cache import default_cache_dir
from ragembed.embedders.settings import Setting
from ragembed.errors import InvalidInputError, MissingDependencyError

Backend = Literal["torch", "onnx", "openvino"]
Quantize = Literal["int8"] | None
BACKENDS: tuple[Backend, ...] = ("torch", "onnx", "openvino")
QUANTIZATIONS: tuple[Quantize, ...] = (None, "int8")
GRAPH_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

GraphRunner = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Runtime:
    """What runs an embedder's transformer: the backend and its precision. Dense and ColBERT
    embedders hold one; it names itself in their cache key and collection state.

    Args:
        backend: "torch", "onnx" (ONNX Runtime) or "openvino".
        quantize: None (fp32) or "int8" (ONNX Runtime's dynamic int8; backend "onnx" only).
    """

    backend: Backend = "torch"
    quantize: Quantize = None

    @classmethod
    def checked(cls, backend: object, quantize: object, device: str | None) -> Runtime:
        """The runtime, after refusing a backend, quantization or device combination that cannot
        run (or is not installed), naming what can."""
        if backend not in BACKENDS:
            raise InvalidInputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if quantize not in QUANTIZATIONS:
            raise InvalidInputError(f"quantize must be None (fp32) or 'int8', got {quantize!r}")
        if quantize == "int8" and backend != "onnx":
            raise InvalidInputError(
                f"quantize='int8' needs backend='onnx' (ONNX Runtime's dynamic int8), not {backend!r}; "
                "pass backend='onnx' (CLI: --backend onnx --quantize int8) or leave quantize unset"
            )
        if backend != "torch" and device not in (None, "cpu"):
            raise InvalidInputError(
                f"backend={backend!r} runs on the CPU, not on device={device!r}; "
                "use backend='torch' for a GPU, or leave device unset"
            )
        if backend != "torch":  # onnx exports (torch.onnx writes through it); the runtime runs the graph
            for package in ("onnx", "onnxruntime" if backend == "onnx" else "openvino"):
                require(package)
        return cls(backend, quantize)

    def settings(self) -> tuple[Setting, Setting]:
        """The runtime's part of an embedder's settings; collections recorded before backends
        existed were encoded by torch fp32."""
        return (
            Setting("backend", self.backend, legacy="torch", cli="--backend"),
            Setting("quantize", self.quantize, legacy=None, cli="--quantize"),
        )

    def apply(self, model: Any, fingerprint: str) -> None:
        """Make a loaded sentence-transformers model (or PyLate ColBERT model) run its transformer
        on this backend; exported graphs are cached per model fingerprint."""
        if self.backend == "torch":
            return
        from sentence_transformers.models import Transformer

        transformer = model[0]
        if not isinstance(transformer, Transformer):
            raise InvalidInputError(
                f"backend={self.backend!r} needs a model whose first module is a sentence-transformers "
                f"Transformer, not {type(transformer).__name__}; use backend='torch'"
            )
        folder = export_folder(fingerprint)
        if self.backend == "onnx":
            graph = fused_graph(transformer, folder)
            if self.quantize == "int8":
                graph = int8_graph(graph)
            run = onnxruntime_runner(graph)
        else:
            run = openvino_runner(exported_graph(transformer, folder))
        transformer.auto_model = graph_module(run, transformer.auto_model.config)


def require(package: str) -> None:
    """Fail before any work when a ragembed[fast] package is missing, naming the extra."""
    try:
        importlib.import_module(package)
    except ImportError as exc:
        raise MissingDependencyError.for_extra(package, "fast") from exc


def export_folder(fingerprint: str) -> Path:
    """Where one model's exported graphs live: beside the embeddings cache, one folder per model
    fingerprint (which changes when a model folder's files change)."""
    return default_cache_dir() / "onnx" / hashlib.sha256(fingerprint.encode()).hexdigest()[:24]


def exported_graph(transformer: Any, folder: Path) -> Path:
    """The transformer as a plain ONNX graph (input ids, mask[, token types] -> token vectors)."""
    path = folder / "model.onnx"
    if path.exists():
        return path
    import torch

    auto_model = transformer.auto_model
    # sdpa attention exports as masked where/isnan nodes that ONNX Runtime cannot fuse; the eager
    # implementation exports as the MatMul/Softmax pattern its optimizer turns into Attention.
    auto_model.set_attn_implementation("eager")
    sample = transformer.tokenize(["an example text to trace", "a second, longer example text to trace the graph"])
    names = [n for n in GRAPH_INPUTS if n in sample]

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = auto_model  # a submodule, so that tracing sees its weights as weights

        def forward(self, *inputs: Any) -> Any:
            return self.model(**dict(zip(names, inputs))).last_hidden_state

    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState().eval(),
            tuple(sample[n] for n in names),
            str(staging(path)),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
    return publish(path)


def fused_graph(transformer: Any, folder: Path) -> Path:
    """The exported graph with ONNX Runtime's transformer fusions (Attention, SkipLayerNorm,
    BiasGelu) where the architecture is one its optimizer knows; else the plain graph."""
    plain = exported_graph(transformer, folder)
    config = transformer.auto_model.config
    from onnxruntime.transformers.optimizer import MODEL_TYPES, optimize_model

    if config.model_type not in MODEL_TYPES:
        return plain
    path = folder / "model-fused.onnx"
    if not path.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optimized = optimize_model(
                str(plain),
                model_type=config.model_type,
                num_heads=config.num_attention_heads,
                hidden_size=config.hidden_size,
            )
        optimized.save_model_to_file(str(staging(path)))
        publish(path)
    return path


def int8_graph(graph: Path) -> Path:
    """Weights int8 per output channel, activations quantized per batch at run time.
    reduce_range keeps u8 x s8 products clear of the 16-bit saturation of AVX2 without VNNI."""
    path = graph.with_name(graph.stem + "-int8.onnx")
    if not path.exists():
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                str(graph),
                str(staging(path)),
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=True,
                # the fused graph's com.microsoft nodes have no ONNX shape inference to type them
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        publish(path)
    return path


def staging(path: Path) -> Path:
    """A per-process name to write to, so that two processes exporting at once never read a half
    written graph: each renames its finished file into place."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def publish(path: Path) -> Path:
    os.replace(staging(path), path)
    return path


def onnxruntime_runner(graph: Path) -> GraphRunner:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    wanted = [i.name for i in session.get_inputs()]
    return lambda feed: cast(np.ndarray, session.run(None, {n: feed[n] for n in wanted})[0])


def openvino_runner(graph: Path) -> GraphRunner:
    import openvino

    # LATENCY: one inference at a time on all cores (measured faster than THROUGHPUT's streams
    # here, where sentence-transformers sends one batch at a time). f32: on CPUs with bf16 units
    # (AVX-512 BF16, AMX) OpenVINO would otherwise run in bf16, about 1e-3 off the torch vectors.
    options = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    compiled = openvino.Core().compile_model(str(graph), "CPU", options)
    wanted = [i.get_any_name() for i in compiled.inputs]
    return lambda feed: cast(np.ndarray, compiled({n: feed[n] for n in wanted})[0])


def graph_module(run: GraphRunner, config: Any) -> Any:
    """A torch module standing in for the transformers model: same config, same call, the
    exported graph behind it (sentence-transformers reads `config` and `device` and calls it with
    the tokenizer's tensors)."""
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    class GraphModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = config

        @property
        def device(self) -> torch.device:
            return torch.device("cpu")

        def forward(self, **inputs: Any) -> BaseModelOutput:
            feed = {n: inputs[n].cpu().numpy() for n in GRAPH_INPUTS if n in inputs}
            hidden = torch.from_numpy(np.ascontiguousarray(run(feed)))
            return BaseModelOutput(last_hidden_state=cast(torch.FloatTensor, hidden))

    return GraphModel()
