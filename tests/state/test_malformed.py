"""A sheet or table a human broke: one clear line naming where and what, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from aios.state import StateError, StateSettings, open_store

from .conftest import AIRTABLE_TOKEN, FAST_RETRY, SHEETS_TOKEN, Emulator, new_airtable_base, new_sheet_book

TS = "2024-05-01T12:00:00+00:00"

SHEETS = {
    "no header": ([[], ["acme", 1, TS]], "missing header row"),
    "no key column": ([["name", "version", "updated_at"], ["acme", 1, TS]], "no 'key' column"),
    "no version column": ([["key", "updated_at"], ["acme", TS]], "no 'version' column"),
    "dup columns": ([["key", "version", "updated_at", "a", "a"]], "duplicate column 'a'"),
    "bad version": ([["key", "version", "updated_at"], ["acme", "one", TS]], "row 2 (key 'acme') is malformed"),
    "bad time": ([["key", "version", "updated_at"], ["acme", 1, "yesterday"]], "row 2 (key 'acme') is malformed"),
    "data no key": ([["key", "version", "updated_at", "a"], ["", 1, TS, "x"]], "row 2 has data but no key"),
}


@pytest.mark.parametrize("worksheet", sorted(SHEETS))
def test_malformed_worksheet(tmp_path: Path, sheets_emulator: Emulator, worksheet: str) -> None:
    rows, problem = SHEETS[worksheet]
    sid = new_sheet_book(sheets_emulator, {worksheet: rows})
    settings = StateSettings(
        sheets_spreadsheet=sid,
        sheets_token=SHEETS_TOKEN,
        sheets_api_url=sheets_emulator.url,
        journal_path=tmp_path / "j.jsonl",
        **FAST_RETRY,
    )
    store = open_store("sheets", settings=settings)
    before = sheets_emulator.control("GET", f"spreadsheets/{sid}")
    for op in (
        lambda: store.get(worksheet, "acme"),
        lambda: store.list(worksheet),
        lambda: store.upsert(worksheet, "acme", {"a": "new"}),
        lambda: store.delete(worksheet, "acme"),
    ):
        with pytest.raises(StateError) as ei:
            op()
        msg = str(ei.value)
        assert "\n" not in msg
        assert sid in msg and f"worksheet {worksheet!r}" in msg and problem in msg, msg
    assert sheets_emulator.control("GET", f"spreadsheets/{sid}") == before  # nothing written
    assert store.pending() == []  # and nothing queued: it is not an outage


def test_empty_worksheet_gets_a_header(tmp_path: Path, sheets_emulator: Emulator) -> None:
    sid = new_sheet_book(sheets_emulator, {"blank": []})
    settings = StateSettings(
        sheets_spreadsheet=sid, sheets_token=SHEETS_TOKEN, sheets_api_url=sheets_emulator.url, **FAST_RETRY
    )
    store = open_store("sheets", settings=settings)
    assert store.list("blank") == []
    store.upsert("blank", "k", {"a": 1})
    dump = sheets_emulator.control("GET", f"spreadsheets/{sid}")["sheets"]["blank"]
    assert dump[0] == ["key", "version", "updated_at", "a"]


def test_human_edits_are_tolerated(tmp_path: Path, sheets_emulator: Emulator) -> None:
    """Reordered columns, blank rows, numbers typed by hand: still readable and writable."""
    sid = new_sheet_book(
        sheets_emulator,
        {"leads": [["status", "key", "updated_at", "version"], ["new", "a", TS, 1], [], ["won", "b", TS, 3]]},
    )
    settings = StateSettings(
        sheets_spreadsheet=sid, sheets_token=SHEETS_TOKEN, sheets_api_url=sheets_emulator.url, **FAST_RETRY
    )
    store = open_store("sheets", settings=settings)
    assert {r.key: (r.version, r.data) for r in store.list("leads")} == {
        "a": (1, {"status": "new"}),
        "b": (3, {"status": "won"}),
    }
    store.upsert("leads", "c", {"status": "lost"})  # appended by the server after the last row
    assert store.upsert("leads", "b", {"status": "paid"}, expected_version=3).version == 4
    rows = sheets_emulator.control("GET", f"spreadsheets/{sid}")["sheets"]["leads"]
    assert rows[0] == ["status", "key", "updated_at", "version"]
    assert rows[2] == [] and rows[3][:2] == ["paid", "b"] and rows[4][:2] == ["lost", "c"]


FIELDS = [
    {"name": "key", "type": "singleLineText"},
    {"name": "version", "type": "number"},
    {"name": "updated_at", "type": "singleLineText"},
]

TABLES = {
    "no key field": (
        [{"name": "name", "type": "singleLineText"}, *FIELDS[1:]],
        [{"name": "acme", "version": 1, "updated_at": TS}],
        "no 'key' field",
    ),
    "blank key": (FIELDS, [{"version": 1, "updated_at": TS}], "has no key"),
    "bad version": (
        [*FIELDS[:1], {"name": "version", "type": "singleLineText"}, FIELDS[2]],
        [{"key": "acme", "version": "one", "updated_at": TS}],
        "(key 'acme') is malformed",
    ),
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_malformed_airtable_table(tmp_path: Path, airtable_emulator: Emulator, table: str) -> None:
    fields, records, problem = TABLES[table]
    bid = new_airtable_base(airtable_emulator, [{"name": table, "fields": fields, "records": records}])
    settings = StateSettings(
        airtable_base_id=bid,
        airtable_token=AIRTABLE_TOKEN,
        airtable_api_url=airtable_emulator.url,
        journal_path=tmp_path / "j.jsonl",
        **FAST_RETRY,
    )
    store = open_store("airtable", settings=settings)
    before = airtable_emulator.control("GET", f"bases/{bid}")
    ops = [lambda: store.list(table)]
    if table != "blank key":  # key lookups use filterByFormula and never see a record without a key
        ops += [
            lambda: store.get(table, "acme"),
            lambda: store.upsert(table, "acme", {"a": "new"}),
            lambda: store.delete(table, "acme"),
        ]
    for op in ops:
        with pytest.raises(StateError) as ei:
            op()
        msg = str(ei.value)
        assert "\n" not in msg
        assert bid in msg and f"table {table!r}" in msg and problem in msg, msg
    assert airtable_emulator.control("GET", f"bases/{bid}") == before
    assert store.pending() == []


def test_missing_spreadsheet_and_base_are_one_line(tmp_path: Path, sheets_emulator: Emulator, airtable_emulator: Emulator) -> None:
    sheets = StateSettings(
        sheets_spreadsheet="does-not-exist", sheets_token=SHEETS_TOKEN, sheets_api_url=sheets_emulator.url, **FAST_RETRY
    )
    with pytest.raises(StateError, match="does-not-exist.*not found") as ei:
        open_store("sheets", settings=sheets).get("t", "k")
    assert "\n" not in str(ei.value)
    airtable = StateSettings(
        airtable_base_id="appNOPE", airtable_token=AIRTABLE_TOKEN, airtable_api_url=airtable_emulator.url, **FAST_RETRY
    )
    with pytest.raises(StateError, match="appNOPE") as ei2:
        open_store("airtable", settings=airtable).get("t", "k")
    assert "\n" not in str(ei2.value)
