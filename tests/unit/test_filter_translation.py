"""One ragembed filter, translated for each backend: the memory store's matcher (the reference),
Qdrant's models (server and local mode), Qdrant Edge's and Weaviate's filter objects."""

from __future__ import annotations

import pytest
import qdrant_edge as qe
from qdrant_client import models

from ragembed.errors import InvalidInputError
from ragembed.search.capabilities import ANY_KEY, PORTABLE
from ragembed.search.filters import Range, combine, matches, validate_filter
from ragembed.stores.qdrant import QdrantEdgeStore, client, edge
from ragembed.stores.qdrant.mapping import QDRANT_FILTER_KEYS, qdrant_filter
from ragembed.stores.weaviate.properties import Impossible, typed_name, weaviate_filter

DOCS = {
    "a": {"lang": "en", "year": 2020, "tags": ["x", "y"], "open": True},
    "b": {"lang": "fr", "year": 2021.0, "tags": ["y"], "open": False},
    "c": {"lang": "en", "year": 2023, "open": True},
    "d": {"year": "2020"},  # a string is not the number 2020
}


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"lang": "en"}, {"a", "c"}),
        ({"lang": ["fr", "de"]}, {"b"}),
        ({"year": 2021}, {"b"}),  # 2021 == 2021.0: numbers compare as numbers
        ({"year": Range(gte=2021)}, {"b", "c"}),
        ({"year": Range(gt=2020, lt=2023)}, {"b"}),
        ({"tags": "y"}, {"a", "b"}),  # a list-valued field matches when any element does
        ({"open": True, "lang": "en"}, {"a", "c"}),
        ({"open": 1}, set()),  # a bool is not the number 1
        ({"year": "2020"}, {"d"}),
        ({"missing": "x"}, set()),
    ],
)
def test_the_memory_store_matches_like_the_engines(filter, expected) -> None:
    checked = validate_filter(filter)
    assert {d for d, meta in DOCS.items() if matches(meta, checked)} == expected


def test_qdrant_gets_a_must_of_payload_conditions_with_numbers_as_ranges() -> None:
    checked = validate_filter({"lang": ["en", "fr"], "year": 2021, "open": True, "score": Range(gt=0.5)})
    built = qdrant_filter(checked, client.FILTERS)
    assert isinstance(built, models.Filter) and len(built.must) == 4
    lang, year, open_, score = built.must
    assert lang == models.FieldCondition(key="metadata.lang", match=models.MatchAny(any=["en", "fr"]))
    assert year == models.FieldCondition(key="metadata.year", range=models.Range(gte=2021.0, lte=2021.0))
    assert open_ == models.FieldCondition(key="metadata.open", match=models.MatchValue(value=True))
    assert score == models.FieldCondition(key="metadata.score", range=models.Range(gt=0.5))
    assert qdrant_filter(None, client.FILTERS) is None


def test_a_mixed_any_of_becomes_a_should() -> None:
    built = qdrant_filter(validate_filter({"v": ["a", 3]}), client.FILTERS)
    (clause,) = built.must
    assert isinstance(clause, models.Filter) and len(clause.should) == 2


def test_qdrant_edge_builds_its_own_filter_objects() -> None:
    built = qdrant_filter(validate_filter({"lang": "en", "year": Range(lte=2020)}), edge.FILTERS)
    assert isinstance(built, qe.Filter)


@pytest.mark.parametrize("key", ["a.b", "a[0]", "with space"])
def test_keys_qdrant_would_read_as_a_json_path_are_refused_before_any_write(key: str, tmp_path) -> None:
    assert not QDRANT_FILTER_KEYS.accepts(key)
    with QdrantEdgeStore(tmp_path / "edge", "c") as store, pytest.raises(InvalidInputError) as caught:
        store.delete_where({key: 1})
    assert "QdrantEdgeStore filters on metadata keys of letters, digits, '_' and '-'" in str(caught.value)
    assert "letters, digits and '_' (at most 200) work with every store" in str(caught.value)


def test_the_portable_key_alphabet_is_accepted_by_every_store() -> None:
    for keys in (QDRANT_FILTER_KEYS, PORTABLE, ANY_KEY):
        assert keys.accepts("year_2020") and keys.accepts("A" * 200)
    assert not PORTABLE.accepts("a-b") and not PORTABLE.accepts("A" * 201)


def test_weaviate_filters_on_the_typed_properties_that_exist() -> None:
    existing = {typed_name("lang", "s"), typed_name("year", "n")}
    built = weaviate_filter(validate_filter({"lang": "en", "year": Range(gte=2020, lt=2022)}), existing)
    assert built is not None
    # A key no document carries (no such property) can match nothing: the store answers empty.
    with pytest.raises(Impossible):
        weaviate_filter(validate_filter({"lang": 3}), existing)


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ("lang=en", "must be a mapping"),
        ({"": "x"}, "non-empty strings"),
        ({"lang": []}, "at least one"),
        ({"lang": {"en"}}, "not a value"),
        ({"year": float("nan")}, "matches nothing"),
    ],
)
def test_bad_filters_are_refused_the_same_way_for_every_backend(filter, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        validate_filter(filter)


def test_ranges_that_can_match_nothing_are_refused_and_two_bounds_on_a_key_merge() -> None:
    with pytest.raises(InvalidInputError, match="can match no value"):
        Range(gt=5, lt=5)
    with pytest.raises(InvalidInputError, match="at least one"):
        Range()
    merged: dict = {}
    combine(merged, "year", Range(gte=2020))
    combine(merged, "year", Range(lt=2023))
    assert merged == {"year": Range(gte=2020, lt=2023)}
    with pytest.raises(InvalidInputError):
        combine(merged, "year", "2021")
