"""The Sheets and Airtable emulators behave like the real APIs where our clients depend on it."""

from __future__ import annotations

import google.auth.exceptions
import gspread
import httpx
import pytest
import requests
from google.oauth2.credentials import Credentials
from pyairtable import Api
from pyairtable.formulas import AND, EQ, OR, Field, match

from aios.emulators.airtable import FieldDef, Table, _Formula
from aios.emulators.sheets import Grid, parse_cells, split_range
from aios.state.sheets_store import _http_client_for

from .conftest import AIRTABLE_TOKEN, SHEETS_TOKEN, Emulator, new_airtable_base, new_sheet_book


def test_a1_notation() -> None:
    assert split_range("'It''s here'!A1:B2") == ("It's here", "A1:B2")
    assert split_range("Sheet1") == ("Sheet1", "")
    assert split_range("Sheet1!C:D") == ("Sheet1", "C:D")
    assert parse_cells("B3") == Grid(2, 1, 2, 1)
    assert parse_cells("A2:C") == Grid(1, 0, None, 2)
    assert parse_cells("2:5") == Grid(1, 0, 4, None)
    assert parse_cells("AA10:AB11") == Grid(9, 26, 10, 27)


def test_gspread_against_the_emulator(sheets_emulator: Emulator) -> None:
    sid = new_sheet_book(sheets_emulator, {"Sheet1": [["a", "b"], [1, 2]]})
    gc = gspread.Client(Credentials(token=SHEETS_TOKEN), http_client=_http_client_for(sheets_emulator.url))
    book = gc.open_by_key(sid)
    ws = book.worksheet("Sheet1")
    assert ws.get_all_values() == [["a", "b"], ["1", "2"]]
    ws.update([["x", "=1+1"]], "A3", value_input_option="RAW")
    ws.append_rows([["y", "TRUE"]], value_input_option="USER_ENTERED")
    assert ws.get("A3:B4", value_render_option="UNFORMATTED_VALUE") == [["x", "=1+1"], ["y", True]]
    new = book.add_worksheet("Other", rows=2, cols=2)
    with pytest.raises(gspread.exceptions.APIError) as ei:
        new.update([["too", "far"]], "A3")
    assert "exceeds grid limits" in str(ei.value)
    ws.delete_rows(1)
    assert ws.get_all_values()[0] == ["1", "2"]
    batch = book.values_batch_get(["Sheet1!A1:A2", "Other"])
    assert [vr.get("values") for vr in batch["valueRanges"]] == [[["1"], ["x"]], None]
    bad = gspread.Client(Credentials(token="nope"), http_client=_http_client_for(sheets_emulator.url))
    # the emulator answers 401; google-auth tries to refresh a token it cannot refresh
    with pytest.raises(google.auth.exceptions.RefreshError):
        bad.open_by_key(sid)


def test_pyairtable_against_the_emulator(airtable_emulator: Emulator) -> None:
    bid = new_airtable_base(
        airtable_emulator,
        [{"name": "People", "fields": [{"name": "key", "type": "singleLineText"}, {"name": "n", "type": "number"}]}],
    )
    api = Api(AIRTABLE_TOKEN, endpoint_url=airtable_emulator.url, retry_strategy=None)
    table = api.table(bid, "People")
    table.batch_create([{"key": f"k{i:03d}", "n": i} for i in range(250)])
    pages = list(table.iterate(page_size=100))
    assert [len(p) for p in pages] == [100, 100, 50]
    assert [r["fields"]["n"] for r in table.all(formula=OR(EQ(Field("key"), "k007"), EQ(Field("key"), "k200")))] == [7, 200]
    assert table.all(formula=AND(match({"key": "k001"}), EQ(Field("n"), 1)))[0]["fields"]["key"] == "k001"
    res = table.batch_upsert([{"fields": {"key": "k001", "n": "42"}}, {"fields": {"key": "new", "n": 5}}], key_fields=["key"], typecast=True)
    assert len(res["updatedRecords"]) == 1 and len(res["createdRecords"]) == 1
    assert table.first(formula=match({"key": "k001"}))["fields"]["n"] == 42
    with pytest.raises(requests.HTTPError) as ei:
        table.create({"nosuch": 1})
    assert ei.value.response.status_code == 422 and "UNKNOWN_FIELD_NAME" in ei.value.response.text
    with pytest.raises(requests.HTTPError):
        table.create({"n": "not a number"})  # no typecast
    rid = table.first(formula=match({"key": "new"}))["id"]
    assert table.delete(rid)["deleted"] is True
    r = requests.patch(f"{airtable_emulator.url}/v0/{bid}/People", json={"records": [{"id": "x", "fields": {}}] * 11},
                       headers={"Authorization": f"Bearer {AIRTABLE_TOKEN}"}, timeout=5)
    assert r.status_code == 422
    r = requests.get(f"{airtable_emulator.url}/v0/{bid}/People", headers={"Authorization": "Bearer wrong"}, timeout=5)
    assert r.status_code == 401


def test_formula_subset() -> None:
    t = Table("tbl1", "T", [FieldDef("f1", "key", "singleLineText"), FieldDef("f2", "n", "number")])
    rec = {"id": "rec1", "fields": {"key": "it's \"x\" {y}", "n": 3}}
    for formula, want in [
        (str(match({"key": "it's \"x\" {y}"})), True),
        ("{n}=3", True),
        ("{n}>2", True),
        ("AND({n}=3, NOT({key}=''))", True),
        ("OR({n}=4, {key}=BLANK())", False),
        ("LOWER({key})=\"it's \\\"x\\\" {y}\"", True),
        ("RECORD_ID()='rec1'", True),
        ("{n}&'!'='3!'", True),
    ]:
        assert bool(_Formula(formula).eval(rec, t)) is want, formula


def test_fault_modes_and_request_counter(sheets_emulator: Emulator) -> None:
    sid = new_sheet_book(sheets_emulator)
    url = f"{sheets_emulator.url}/v4/spreadsheets/{sid}"
    auth = {"Authorization": f"Bearer {SHEETS_TOKEN}"}
    sheets_emulator.control("DELETE", "requests")
    sheets_emulator.fault("rate_limited", times=1, retry_after=7)
    r = requests.get(url, headers=auth, timeout=5)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    sheets_emulator.fault("error_500", times=1)
    assert requests.get(url, headers=auth, timeout=5).status_code == 500
    sheets_emulator.fault("down", times=1, after=1)
    assert requests.get(url, headers=auth, timeout=5).status_code == 200
    assert requests.get(url, headers=auth, timeout=5).status_code == 503
    assert requests.get(url, headers=auth, timeout=5).status_code == 200
    assert sheets_emulator.control("GET", "faults")["mode"] == "none"
    assert sheets_emulator.request_count() == 5
    with pytest.raises(httpx.HTTPStatusError) as ei:
        sheets_emulator.fault("bogus")
    assert ei.value.response.status_code == 400 and "unknown fault mode 'bogus'" in ei.value.response.text
