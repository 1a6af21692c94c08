"""Every wire fault x every operation, through the real gspread / pyairtable clients.

For each (backend, fault, operation):

* a *blip* (the fault hits one request -- the write itself for write operations):
  the operation answers as if nothing happened and nothing is journaled;
* an *outage* (the fault stays until cleared): writes still answer (journaled),
  reads raise one typed line (:class:`BackendUnavailable`);

and after recovery (and a sync) every record is in the backend exactly once, with the
data of the last write.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from aios.state import BackendUnavailable, Record, open_store

from .conftest import Backend, free_port, make_backend

TIMEOUT = 0.5  # http_timeout for the read-timeout fault
SLOW = 1.2  # the server answers after this: the client has given up by then

FAULTS: dict[str, dict[str, Any]] = {
    "429 with Retry-After": {"mode": "rate_limited", "retry_after": 0.05},
    "500": {"mode": "error_500"},
    "503": {"mode": "down"},
    "connection refused": {},
    "body cut mid-way": {"mode": "cut"},
    "200 with truncated JSON": {"mode": "truncated"},
    "read timeout": {"mode": "slow", "delay": SLOW},
}
OPS = ["get", "upsert", "upsert_many", "list", "delete"]
WRITES = {"upsert", "upsert_many", "delete"}
SEED = {"a": {"i": 0}, "b": {"i": 0}}
# the data each operation leaves behind
AFTER = {
    "get": SEED,
    "list": SEED,
    "upsert": SEED | {"c": {"i": 1}},  # a new key: Sheets appends it
    "upsert_many": {"a": {"i": 2}, "b": {"i": 0}, "c": {"i": 2}, "d": {"i": 2}},  # update + appends
    "delete": {"a": {"i": 0}},
}


def run(store: Any, op: str) -> Any:
    if op == "get":
        return store.get("t", "a")
    if op == "list":
        return sorted(r.key for r in store.list("t"))
    if op == "upsert":
        return store.upsert("t", "c", {"i": 1})
    if op == "upsert_many":
        return store.upsert_many("t", [("a", {"i": 2}), ("c", {"i": 2}), ("d", {"i": 2})])
    return store.delete("t", "b")


def check_answer(op: str, out: Any, *, versions_known: bool = True) -> None:
    """``versions_known=False``: a store that never reached the backend journals provisional versions."""
    if op == "get":
        assert isinstance(out, Record) and out.data == {"i": 0}
    elif op == "list":
        assert out == ["a", "b"]
    elif op == "upsert":
        assert isinstance(out, Record) and (out.key, out.version, out.data) == ("c", 1, {"i": 1})
    elif op == "upsert_many":
        assert [(r.key, r.data) for r in out] == [("a", {"i": 2}), ("c", {"i": 2}), ("d", {"i": 2})]
        assert [r.version for r in out] == ([2, 1, 1] if versions_known else [1, 1, 1])
    else:
        assert out is True


def raw_rows(backend: Backend) -> dict[str, list[tuple[int, str, dict[str, Any]]]]:
    """key -> [(version, updated_at, data)] for every row/record the emulator holds in table t."""
    out: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
    if backend.name == "sheets":
        dump = backend.emulator.control("GET", f"spreadsheets/{backend.settings.sheets_spreadsheet}")
        rows = dump["sheets"]["t"]
        header = rows[0]
        for row in rows[1:]:
            cells = dict(zip(header, row + [""] * (len(header) - len(row)), strict=False))
            if cells.get("key"):
                data = {k: int(v) for k, v in cells.items() if k not in ("key", "version", "updated_at") and v != ""}
                out.setdefault(cells["key"], []).append((int(cells["version"]), cells["updated_at"], data))
    else:
        dump = backend.emulator.control("GET", f"bases/{backend.settings.airtable_base_id}")
        (table,) = [t for t in dump["tables"] if t["name"] == "t"]
        for rec in table["records"]:
            f = rec["fields"]
            data = {k: int(v) for k, v in f.items() if k not in ("key", "version", "updated_at")}
            out.setdefault(f["key"], []).append((int(f["version"]), f["updated_at"], data))
    return out


def check_backend(backend: Backend, op: str) -> None:
    """Each record of the expected state is there once (a write sent twice is one record)."""
    rows = raw_rows(backend)
    assert {k: v[0][2] for k, v in rows.items()} == AFTER[op]
    for key, copies in rows.items():
        # a request that timed out and was re-sent may have landed twice -- the same write
        # (same version and stamp), resolved on read and removed by the key's next write
        assert len(set(map(repr, copies))) == 1, (key, copies)
    store = open_store(backend.name, settings=backend.settings)
    assert {r.key: r.data for r in store.list("t")} == AFTER[op]
    for key in rows:
        store.upsert("t", key, AFTER[op][key])
    assert all(len(copies) == 1 for copies in raw_rows(backend).values())


def seeded(backend: Backend) -> Any:
    store = open_store(backend.name, settings=backend.settings)
    store.upsert_many("t", list(SEED.items()))
    return store


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "connection refused"])
@pytest.mark.parametrize("name", ["sheets", "airtable"])
def test_a_blip_is_invisible(name: str, fault: str, op: str, tmp_path, request) -> None:  # noqa: ANN001
    backend = make_backend(name, tmp_path, request, http_timeout=TIMEOUT if fault == "read timeout" else 10.0)
    store = seeded(backend)
    # writes: the read before the write gets through, the write itself is hit
    backend.emulator.fault(times=1, after=1 if op in WRITES else 0, **FAULTS[fault])
    try:
        out = run(store, op)
    finally:
        if fault == "read timeout":
            time.sleep(SLOW)  # let the request the client gave up on land
        backend.emulator.clear_fault()
    check_answer(op, out)
    assert store.pending() == []
    check_backend(backend, op)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("name", ["sheets", "airtable"])
def test_an_outage_journals_writes_and_reads_say_so(name: str, fault: str, op: str, tmp_path, request) -> None:  # noqa: ANN001
    backend = make_backend(name, tmp_path, request, http_timeout=TIMEOUT if fault == "read timeout" else 10.0)
    seeded(backend)
    if fault == "connection refused":
        settings = backend.settings.model_copy(
            update={"sheets_api_url" if name == "sheets" else "airtable_api_url": f"http://127.0.0.1:{free_port()}"}
        )
        store = open_store(name, settings=settings)
    else:
        store = open_store(name, settings=backend.settings)
        backend.emulator.fault(times=None, after=1 if op in WRITES else 0, **FAULTS[fault])
    try:
        if op in WRITES:
            # answered: applied (a retry found it had landed) or journaled -- the end state tells
            check_answer(op, run(store, op), versions_known=fault != "connection refused")
        else:
            with pytest.raises(BackendUnavailable) as ei:
                run(store, op)
            msg = str(ei.value)
            assert "\n" not in msg and "unavailable" in msg and store.where in msg
    finally:
        if fault == "read timeout":
            time.sleep(SLOW)
        backend.emulator.clear_fault()
    live = open_store(name, settings=backend.settings)
    report = live.sync()
    assert report.remaining == 0 and not report.conflicts and not report.errors
    check_backend(backend, op)
