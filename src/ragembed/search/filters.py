"""Metadata filters: one small language every store adapter translates to its engine.

A filter is a mapping from a metadata key to a condition; all conditions must hold:

    {"lang": "en"}                  equals
    {"year": [2019, 2020]}          any of
    {"year": Range(gte=2019)}       numeric range (gt, gte, lt, lte)

Kept this small on purpose: Qdrant payload filters and Weaviate `Filter`s both express it, so a
filter means the same on every backend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ragembed.errors import InvalidInputError
from ragembed.types import check_unicode

Scalar = str | int | float | bool


@dataclass(frozen=True)
class Range:
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    def __post_init__(self) -> None:
        bounds = {k: v for k, v in vars(self).items() if v is not None}
        if not bounds:
            raise InvalidInputError("Range needs at least one of gt, gte, lt, lte")
        for name, value in bounds.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidInputError(f"Range.{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise InvalidInputError(
                    f"Range.{name} must be a finite number, got {value!r}; leave the bound out instead"
                )
        lower = [(v, k == "gt") for k, v in bounds.items() if k in ("gt", "gte")]
        upper = [(v, k == "lt") for k, v in bounds.items() if k in ("lt", "lte")]
        for low, strict_low in lower:
            for high, strict_high in upper:
                if low > high or (low == high and (strict_low or strict_high)):
                    raise InvalidInputError(
                        f"{self!r} can match no value: its lower bound is not below its upper bound; check the bounds"
                    )

    def __repr__(self) -> str:
        return "Range(" + ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if v is not None) + ")"

    def holds(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return (
            (self.gt is None or value > self.gt)
            and (self.gte is None or value >= self.gte)
            and (self.lt is None or value < self.lt)
            and (self.lte is None or value <= self.lte)
        )


Condition = Scalar | list[Scalar] | tuple[Scalar, ...] | Range
Filter = Mapping[str, Condition]


def validate_filter(filter: Filter | None) -> dict[str, Condition] | None:
    """Check a filter's shape, so that every backend fails the same way on a bad one."""
    if filter is None:
        return None
    if not isinstance(filter, Mapping):
        raise InvalidInputError(f"filter must be a mapping like {{'lang': 'en'}}, got {type(filter).__name__}")
    checked: dict[str, Condition] = {}
    for key, condition in filter.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"filter keys must be non-empty strings, got {key!r}")
        check_unicode(key, f"filter key {key!r}")
        if isinstance(condition, (list, tuple)):
            if not condition or not all(isinstance(v, (str, int, float, bool)) for v in condition):
                raise InvalidInputError(f"filter {key!r}: an any-of list must hold at least one string/number/bool")
            for value in condition:
                _check_value(key, value)
            checked[key] = tuple(condition)
        elif isinstance(condition, (str, int, float, bool, Range)):
            if not isinstance(condition, Range):
                _check_value(key, condition)
            checked[key] = condition
        else:
            raise InvalidInputError(f"filter {key!r}: {condition!r} is not a value, a list of values or a Range")
    return checked


def _check_value(key: str, value: Scalar) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"filter {key!r}: {value!r} matches nothing (metadata holds no NaN or infinity)")
    if isinstance(value, str):
        check_unicode(value, f"filter {key!r} value {value!r}")


def combine(filter: dict[str, Condition], key: str, condition: Condition) -> None:
    """Add `condition` on `key` to `filter`, all conditions holding (AND): two ranges on one key
    merge into one range; anything else on a key that already has a condition is refused,
    since a filter holds one condition per key."""
    if key not in filter:
        filter[key] = condition
        return
    earlier = filter[key]
    if isinstance(earlier, Range) and isinstance(condition, Range):
        given = {f.name: getattr(condition, f.name) for f in fields(Range) if getattr(condition, f.name) is not None}
        repeated = [name for name in given if getattr(earlier, name) is not None]
        if repeated:
            raise InvalidInputError(f"filter {key!r}: the bound {repeated[0]} is given twice; give each bound once")
        filter[key] = Range(**{f.name: getattr(earlier, f.name) for f in fields(Range)} | given)
        return
    raise InvalidInputError(
        f"filter {key!r} is given twice ({earlier!r} and {condition!r}); a key takes one condition: one value, "
        "a list of values for any of them, or one range (bounds on one key combine into one range)"
    )


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
    if isinstance(condition, (list, tuple)):
        return any(_equal(value, c) for c in condition)
    return _equal(value, condition)


def _equal(value: Any, wanted: Scalar) -> bool:
    # True == 1 in Python; a filter on a bool must not match the number 1, nor the reverse.
    return (type(value) is type(wanted) and value == wanted) or (
        not isinstance(value, bool)
        and not isinstance(wanted, bool)
        and isinstance(value, (int, float))
        and isinstance(wanted, (int, float))
        and value == wanted
    )
