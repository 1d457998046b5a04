"""MUVERA fixed-dimensional encodings (FDEs): one dense vector per multi-vector embedding.

The dot product of a query's FDE with a document's approximates their ColBERT MaxSim (Dhulipala
et al., "MUVERA", 2024): SimHash splits the token space into 2**k_sim clusters, each cluster's
tokens are summed (queries) or averaged (documents), projected to dim_proj dimensions, and r_reps
independent repetitions are concatenated. A plain dense index over FDEs then finds the
candidates that MaxSim over the real tokens rescores (strategy `colbert+muvera`).

fastembed's implementation (fastembed.postprocess.Muvera, Qdrant's own) computes them; this
module only fixes the parameters a collection was encoded with and checks them, so documents and
later queries are encoded with the same random projections (the seed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ragembed.errors import InvalidInputError, MissingDependencyError
from ragembed.types import DenseEmbeddings, MultiVectorEmbeddings, check_positive

if TYPE_CHECKING:
    from fastembed.postprocess import Muvera

SHAPE_LABEL = re.compile(r"k(\d+)p(\d+)r(\d+)")  # k5p16r20, as strategy names spell a shape


@dataclass(frozen=True)
class MuveraShape:
    """The parameters of an FDE: fastembed's defaults (k_sim 5, dim_proj 16, r_reps 20: 10,240
    dimensions). Smaller shapes are cheaper to store and search and approximate MaxSim less well
    (docs/benchmarks.md section 4 measures two)."""

    k_sim: int = 5  # SimHash hyperplanes: 2**k_sim clusters per repetition
    dim_proj: int = 16  # each cluster's centre projected to this many dimensions
    r_reps: int = 20  # independent repetitions, concatenated
    seed: int = 42  # the random hyperplanes and projections; documents and queries share them

    def __post_init__(self) -> None:
        for name in ("k_sim", "dim_proj", "r_reps"):
            check_positive(f"MUVERA {name}", getattr(self, name), integer=True)
        if self.k_sim > 10:
            raise InvalidInputError(f"MUVERA k_sim {self.k_sim} makes 2**{self.k_sim} clusters; pick k_sim <= 10")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidInputError(f"MUVERA seed must be a whole number >= 0, got {self.seed!r}")

    @property
    def dim(self) -> int:
        """The FDE's dimension: r_reps * 2**k_sim * dim_proj."""
        return int(self.r_reps * 2**self.k_sim * self.dim_proj)

    @property
    def label(self) -> str:
        """How strategy names spell the shape: k5p16r20."""
        return f"k{self.k_sim}p{self.dim_proj}r{self.r_reps}"

    @classmethod
    def from_label(cls, label: str) -> MuveraShape:
        match = SHAPE_LABEL.fullmatch(label)
        if not match:
            raise InvalidInputError(
                f"a MUVERA shape is spelled k<k_sim>p<dim_proj>r<r_reps>, e.g. k4p16r10, got {label!r}"
            )
        k_sim, dim_proj, r_reps = (int(g) for g in match.groups())
        return cls(k_sim, dim_proj, r_reps)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MuveraShape:
        keys = ("k_sim", "dim_proj", "r_reps", "seed")
        if not isinstance(data, Mapping) or sorted(data) != sorted(keys):
            raise InvalidInputError(f"a MUVERA shape is a mapping of {', '.join(keys)}, got {data!r}")
        return cls(**{k: data[k] for k in keys})

    def check_tokens(self, token_dim: int) -> None:
        if self.dim_proj > token_dim:
            raise InvalidInputError(
                f"MUVERA dim_proj {self.dim_proj} exceeds the model's {token_dim}-dim token vectors; "
                f"pick dim_proj <= {token_dim}"
            )

    def encode(self, tokens: MultiVectorEmbeddings, query: bool) -> DenseEmbeddings:
        """The FDEs of documents' (query=False) or queries' (query=True) token vectors: queries sum
        each cluster's tokens, documents average them and fill empty clusters (MUVERA's
        asymmetry, which fastembed's process_query / process_document apply)."""
        self.check_tokens(tokens.dim)
        muvera = _muvera(self, tokens.dim)
        process = muvera.process_query if query else muvera.process_document
        return DenseEmbeddings(np.stack([process(v) for v in tokens.vectors]).astype(np.float32))


DEFAULT_SHAPE = MuveraShape()


@cache
def _muvera(shape: MuveraShape, token_dim: int) -> Muvera:
    try:
        from fastembed.postprocess import Muvera
    except ImportError as exc:
        raise MissingDependencyError.for_extra("fastembed (MUVERA)", "colbert") from exc
    return Muvera(token_dim, shape.k_sim, shape.dim_proj, shape.r_reps, shape.seed)
