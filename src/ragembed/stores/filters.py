"""Metadata filters: one small language every store adapter translates to its engine.

A filter is a mapping from a metadata key to a condition; all conditions must hold:

    {"lang": "en"}                  equals
    {"year": [2019, 2020]}          any of
    {"year": Range(gte=2019)}       numeric range (gt, gte, lt, lte)

Kept this small on purpose: Qdrant payload filters and Weaviate `Filter`s both express it, so a
filter means the same on every backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional, Union

from ragembed.errors import InvalidInputError

Scalar = Union[str, int, float, bool]


@dataclass(frozen=True)
class Range:
    gt: Optional[float] = None
    gte: Optional[float] = None
    lt: Optional[float] = None
    lte: Optional[float] = None

    def __post_init__(self) -> None:
        bounds = {k: v for k, v in vars(self).items() if v is not None}
        if not bounds:
            raise InvalidInputError("Range needs at least one of gt, gte, lt, lte")
        for name, value in bounds.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidInputError(f"Range.{name} must be a number, got {value!r}")

    def holds(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return ((self.gt is None or value > self.gt) and (self.gte is None or value >= self.gte)
                and (self.lt is None or value < self.lt) and (self.lte is None or value <= self.lte))


Condition = Union[Scalar, list, tuple, Range]
Filter = Mapping[str, Condition]


def validate_filter(filter: Filter | None) -> dict[str, Condition] | None:
    """Check a filter's shape, so that every backend fails the same way on a bad one."""
    if filter is None:
        return None
    if not isinstance(filter, Mapping):
        raise InvalidInputError(
            f"filter must be a mapping like {{'lang': 'en'}}, got {type(filter).__name__}"
        )
    checked: dict[str, Condition] = {}
    for key, condition in filter.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"filter keys must be non-empty strings, got {key!r}")
        if isinstance(condition, (list, tuple)):
            if not condition or not all(isinstance(v, (str, int, float, bool)) for v in condition):
                raise InvalidInputError(
                    f"filter {key!r}: an any-of list must hold at least one string/number/bool"
                )
            checked[key] = tuple(condition)
        elif isinstance(condition, (str, int, float, bool, Range)):
            checked[key] = condition
        else:
            raise InvalidInputError(
                f"filter {key!r}: {condition!r} is not a value, a list of values or a Range"
            )
    return checked


def matches(metadata: Mapping[str, Any], filter: Mapping[str, Condition] | None) -> bool:
    """Every condition holds. A list-valued metadata field matches when any element does
    (as in Qdrant and Weaviate)."""
    if not filter:
        return True
    for key, condition in filter.items():
        if key not in metadata:
            return False
        value = metadata[key]
        values = value if isinstance(value, (list, tuple)) else (value,)
        if not any(_holds(v, condition) for v in values):
            return False
    return True


def _holds(value: Any, condition: Condition) -> bool:
    if isinstance(condition, Range):
        return condition.holds(value)
    if isinstance(condition, tuple):
        return any(_equal(value, c) for c in condition)
    return _equal(value, condition)


def _equal(value: Any, wanted: Scalar) -> bool:
    # True == 1 in Python; a filter on a bool must not match the number 1, nor the reverse.
    return type(value) is type(wanted) and value == wanted or (
        not isinstance(value, bool) and not isinstance(wanted, bool)
        and isinstance(value, (int, float)) and isinstance(wanted, (int, float)) and value == wanted)
