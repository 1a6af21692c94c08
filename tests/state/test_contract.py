"""One contract, run unchanged against every backend (json, sheets, airtable)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from aios.state import RESERVED_FIELDS, Record, StateError, Store, VersionConflict

ROUND_TRIP = {
    "text": "hello world",
    "numeric_string": "3",
    "empty": "",
    "bool_string": "true",
    "json_looking": '{"a": 1}',
    "padded": "  spaced  ",
    "formula": "=1+1",
    "multiline": "line one\nline two",
    "unicode": "café ☕ 日本",
    "int": 42,
    "negative": -7,
    "float": 3.25,
    "true": True,
    "false": False,
    "list": [1, "two", {"three": 3}],
    "nested": {"a": {"b": [True, None, 1.5]}},
}


def test_get_missing_and_create(store: Store) -> None:
    assert store.get("leads", "nobody") is None
    rec = store.upsert("leads", "acme", {"status": "new"})
    assert isinstance(rec, Record)
    assert (rec.table, rec.key, rec.version, rec.data) == ("leads", "acme", 1, {"status": "new"})
    assert rec.updated_at.tzinfo is not None and rec.updated_at.utcoffset().total_seconds() == 0
    got = store.get("leads", "acme")
    assert got == rec


def test_values_round_trip_exactly(store: Store) -> None:
    rec = store.upsert("types", "k", ROUND_TRIP)
    assert rec.data == ROUND_TRIP
    got = store.get("types", "k")
    assert got is not None
    assert got.data == ROUND_TRIP
    for field, value in ROUND_TRIP.items():
        assert type(got.data[field]) is type(value), field


def test_upsert_replaces_data_and_bumps_version(store: Store) -> None:
    store.upsert("leads", "acme", {"status": "new", "score": 1, "owner": "ann"})
    rec = store.upsert("leads", "acme", {"status": "won"})
    assert rec.version == 2
    assert store.get("leads", "acme").data == {"status": "won"}
    rec3 = store.upsert("leads", "acme", {"status": "won", "score": 9})
    assert rec3.version == 3 and store.get("leads", "acme").data == {"status": "won", "score": 9}


def test_none_fields_are_dropped(store: Store) -> None:
    rec = store.upsert("t", "k", {"a": 1, "gone": None})
    assert rec.data == {"a": 1}
    assert store.get("t", "k").data == {"a": 1}


@pytest.mark.parametrize(
    "data",
    [
        {"key": "x"},
        {"version": 3},
        {"updated_at": "now"},
        {"bad": {1, 2}},
        {"bad": object()},
        {"bad": float("nan")},
        {1: "int key"},
        "not a dict",
        [("a", 1)],
    ],
)
def test_invalid_data_is_rejected(store: Store, data: object) -> None:
    with pytest.raises(StateError) as ei:
        store.upsert("t", "k", data)  # type: ignore[arg-type]
    assert "\n" not in str(ei.value)
    assert store.get("t", "k") is None


def test_reserved_fields_are_documented() -> None:
    assert RESERVED_FIELDS == {"key", "version", "updated_at"}


@pytest.mark.parametrize("key", ["", " padded", "new\nline", None, 3])
def test_invalid_keys_are_rejected(store: Store, key: object) -> None:
    with pytest.raises(StateError):
        store.upsert("t", key, {"a": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize("table", ["", "a/b", "x!y", "it's", "t" * 101])
def test_invalid_table_names_are_rejected(store: Store, table: str) -> None:
    with pytest.raises(StateError):
        store.upsert(table, "k", {"a": 1})


def test_list_and_filter(store: Store) -> None:
    assert store.list("people") == []
    store.upsert_many(
        "people",
        [
            ("ann", {"team": "red", "age": 30, "active": True}),
            ("bob", {"team": "blue", "age": 30, "active": False}),
            ("cy", {"team": "red", "age": 41}),
            ("dee", {"team": "3"}),
        ],
    )
    assert sorted(r.key for r in store.list("people")) == ["ann", "bob", "cy", "dee"]
    assert sorted(r.key for r in store.list("people", {"team": "red"})) == ["ann", "cy"]
    assert sorted(r.key for r in store.list("people", {"team": "red", "age": 30})) == ["ann"]
    assert sorted(r.key for r in store.list("people", {"age": 30})) == ["ann", "bob"]
    assert sorted(r.key for r in store.list("people", {"active": False})) == ["bob"]
    assert sorted(r.key for r in store.list("people", {"active": None})) == ["cy", "dee"]
    # "3" the string is not 3 the number
    assert [r.key for r in store.list("people", {"team": "3"})] == ["dee"]
    assert store.list("people", {"team": 3}) == []
    assert store.list("people", {"team": "green"}) == []
    assert store.list("people", {"nosuchfield": "x"}) == []
    assert sorted(r.key for r in store.list("people", {})) == ["ann", "bob", "cy", "dee"]  # {} filters nothing


def test_tables_are_independent(store: Store) -> None:
    store.upsert("a", "k", {"v": 1})
    store.upsert("b", "k", {"v": 2})
    assert store.get("a", "k").data == {"v": 1}
    assert store.get("b", "k").data == {"v": 2}
    assert store.delete("a", "k")
    assert store.get("b", "k") is not None


def test_delete(store: Store) -> None:
    assert store.delete("t", "nobody") is False
    store.upsert("t", "k1", {"a": 1})
    store.upsert("t", "k2", {"a": 2})
    store.upsert("t", "k3", {"a": 3})
    assert store.delete("t", "k2") is True
    assert store.get("t", "k2") is None
    assert store.delete("t", "k2") is False
    assert sorted(r.key for r in store.list("t")) == ["k1", "k3"]
    # the remaining records are intact and still writable
    assert store.get("t", "k3").data == {"a": 3}
    assert store.upsert("t", "k3", {"a": 33}).version == 2
    # a deleted key starts over at version 1
    assert store.upsert("t", "k2", {"a": 22}).version == 1


def test_upsert_many(store: Store) -> None:
    assert store.upsert_many("bulk", []) == []
    items = [(f"k{i:02d}", {"i": i, "label": f"item {i}"}) for i in range(25)]
    recs = store.upsert_many("bulk", items)
    assert [r.key for r in recs] == [k for k, _ in items]
    assert all(r.version == 1 for r in recs)
    again = store.upsert_many("bulk", [("k00", {"i": 100}), ("new", {"i": -1}), ("k00", {"i": 200})])
    assert [(r.key, r.version) for r in again] == [("k00", 2), ("new", 1), ("k00", 3)]
    assert store.get("bulk", "k00").data == {"i": 200}
    assert store.get("bulk", "k00").version == 3
    assert len(store.list("bulk")) == 26
    assert store.get("bulk", "k24").data == {"i": 24, "label": "item 24"}


def test_version_conflict(store: Store) -> None:
    rec = store.upsert("t", "k", {"v": 1})
    rec2 = store.upsert("t", "k", {"v": 2}, expected_version=rec.version)
    assert rec2.version == 2
    with pytest.raises(VersionConflict) as ei:
        store.upsert("t", "k", {"v": "lost"}, expected_version=rec.version)
    msg = str(ei.value)
    assert "\n" not in msg and "'t'" in msg and "'k'" in msg and "expected version 1" in msg and "version 2" in msg
    assert ei.value.expected == 1 and ei.value.actual == 2
    assert store.get("t", "k").data == {"v": 2}
    # expected_version=0 means "create only"
    with pytest.raises(VersionConflict):
        store.upsert("t", "k", {"v": 3}, expected_version=0)
    assert store.upsert("t", "fresh", {"v": 1}, expected_version=0).version == 1
    with pytest.raises(VersionConflict):
        store.upsert("t", "missing", {"v": 1}, expected_version=5)
    assert store.get("t", "missing") is None
    # delete honours it too
    with pytest.raises(VersionConflict):
        store.delete("t", "k", expected_version=1)
    assert store.delete("t", "k", expected_version=2) is True


def test_two_writers_never_overwrite_silently(backend) -> None:  # noqa: ANN001
    a, b = backend.open(), backend.open()
    a.upsert("t", "k", {"owner": "nobody"})
    seen_by_a = a.get("t", "k")
    seen_by_b = b.get("t", "k")
    b.upsert("t", "k", {"owner": "b"}, expected_version=seen_by_b.version)
    with pytest.raises(VersionConflict):
        a.upsert("t", "k", {"owner": "a"}, expected_version=seen_by_a.version)
    assert a.get("t", "k").data == {"owner": "b"}


def test_record_model_validation() -> None:
    now = datetime.now(UTC)
    rec = Record(table="t", key="k", version=1, updated_at=now, data={"a": 1})
    with pytest.raises(ValidationError):
        Record(table="t", key="k", version=0, updated_at=now, data={})
    with pytest.raises(ValidationError):
        Record(table="t", key="", version=1, updated_at=now, data={})
    with pytest.raises(ValidationError):
        Record(table="t", key="k", version=1, updated_at=now, data=["not", "a", "dict"])
    with pytest.raises(ValidationError):
        Record(table="t", key="k", version=1, updated_at=now, data={}, extra="nope")
    with pytest.raises(ValidationError):
        rec.version = 2  # frozen
    naive = Record(table="t", key="k", version=1, updated_at=datetime(2024, 1, 1, 12, 0), data={})
    assert naive.updated_at.tzinfo is not None
    assert Record.model_validate_json(rec.model_dump_json()) == rec


def test_records_from_store_are_valid_models(store: Store) -> None:
    store.upsert_many("t", [("a", {"x": 1}), ("b", {"y": [1, 2]})])
    for rec in store.list("t"):
        assert Record.model_validate(rec.model_dump()) == rec
