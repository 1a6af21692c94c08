"""Several PROCESSES writing to the emulated Sheets/Airtable.

* New keys: two writers in separate ``AIOS_HOME`` folders *and* separate lock folders
  (as on two machines) lose nothing -- the server allocates rows/records.
* ``expected_version``: writers on one host share the host-wide lock folder, whatever
  their ``AIOS_HOME``, so optimistic retry loops lose no update.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest

from aios.state import StateSettings, VersionConflict, open_store

from .conftest import Backend

PROCS = 4
INCREMENTS = 5
NEW_KEYS = 30


def _isolated(settings: StateSettings, home: Path, *, own_locks: bool) -> StateSettings:
    os.environ["AIOS_HOME"] = str(home)
    update = {"journal_path": home / "state" / "journal.jsonl", "path": home / "state" / "aios.json"}
    if own_locks:
        update["lock_path"] = home / "state" / "locks"
    return settings.model_copy(update=update)


def _add_keys(name: str, settings: StateSettings, home: Path, wid: int) -> None:
    store = open_store(name, settings=_isolated(settings, home, own_locks=True))
    for j in range(NEW_KEYS):
        store.upsert("leads", f"w{wid}-{j:02d}", {"writer": wid, "j": j})
    assert store.pending() == []


def _count(name: str, settings: StateSettings, home: Path, wid: int, out: mp.Queue) -> None:
    store = open_store(name, settings=_isolated(settings, home, own_locks=False))
    versions = []
    for _ in range(INCREMENTS):
        while True:
            cur = store.get("shared", "counter")
            try:
                rec = store.upsert(
                    "shared",
                    "counter",
                    {"n": (cur.data["n"] if cur else 0) + 1},
                    expected_version=cur.version if cur else 0,
                )
                versions.append(rec.version)
                break
            except VersionConflict:
                pass
    out.put(versions)


def _run(target, args_for, n: int) -> None:  # noqa: ANN001
    ctx = mp.get_context("spawn")  # fork is unsafe once Prefect has started threads
    procs = [ctx.Process(target=target, args=args_for(i)) for i in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    assert [p.exitcode for p in procs] == [0] * n


def _raw_keys(remote: Backend, table: str) -> list[str]:
    if remote.name == "sheets":
        rows = remote.emulator.control("GET", f"spreadsheets/{remote.settings.sheets_spreadsheet}")["sheets"][table]
        return [row[0] for row in rows[1:] if row and row[0]]
    tables = remote.emulator.control("GET", f"bases/{remote.settings.airtable_base_id}")["tables"]
    (t,) = [t for t in tables if t["name"] == table]
    return [r["fields"]["key"] for r in t["records"]]


def test_two_writers_in_different_folders_adding_new_keys_lose_nothing(remote: Backend, tmp_path: Path) -> None:
    remote.open().upsert("leads", "seed", {"writer": -1, "j": -1})  # the worksheet/table and its columns exist
    _run(_add_keys, lambda i: (remote.name, remote.settings, tmp_path / f"machine{i}", i), 2)
    raw = _raw_keys(remote, "leads")
    expected = ["seed"] + [f"w{w}-{j:02d}" for w in range(2) for j in range(NEW_KEYS)]
    assert sorted(raw) == sorted(expected)  # 61 records, each exactly once
    assert {r.key: r.data["j"] for r in remote.open().list("leads") if r.key != "seed"} == {
        f"w{w}-{j:02d}": j for w in range(2) for j in range(NEW_KEYS)
    }


def test_processes_in_different_folders_with_expected_version_lose_no_update(remote: Backend, tmp_path: Path) -> None:
    out: mp.Queue = mp.get_context("spawn").Queue()
    _run(_count, lambda i: (remote.name, remote.settings, tmp_path / f"home{i}", i, out), PROCS)
    versions = sorted(v for _ in range(PROCS) for v in out.get(timeout=5))
    # every successful conditional write made its own version: none overwrote another
    assert versions == list(range(1, PROCS * INCREMENTS + 1))
    counter = remote.open().get("shared", "counter")
    assert (counter.data, counter.version) == ({"n": PROCS * INCREMENTS}, PROCS * INCREMENTS)


def test_threads_sharing_one_cached_store_lose_no_update(remote: Backend) -> None:
    import threading

    store = remote.open()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(INCREMENTS):
                while True:
                    cur = store.get("shared", "counter")
                    try:
                        store.upsert("shared", "counter", {"n": (cur.data["n"] if cur else 0) + 1},
                                     expected_version=cur.version if cur else 0)
                        break
                    except VersionConflict:
                        pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(PROCS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.get("shared", "counter").data == {"n": PROCS * INCREMENTS}


@pytest.mark.parametrize("name", ["sheets", "airtable"])
def test_duplicate_rows_of_a_key_resolve_the_same_way_and_the_next_write_removes_them(name: str, tmp_path: Path, request) -> None:  # noqa: ANN001
    from .conftest import make_backend

    ts1, ts2 = "2024-05-01T12:00:00+00:00", "2024-05-02T12:00:00+00:00"
    backend = make_backend(name, tmp_path, request)
    emu = backend.emulator
    rows = [("acme", 2, ts1, "old"), ("acme", 3, ts1, "new"), ("acme", 3, ts2, "newest"), ("b", 1, ts1, "x")]
    if name == "sheets":
        sid = backend.settings.sheets_spreadsheet
        emu.control("PUT", f"spreadsheets/{sid}", {"sheets": {"t": [["key", "version", "updated_at", "a"]]
                                                              + [[k, v, t, f'"{a}"'] for k, v, t, a in rows]}})
    else:
        fields = [{"name": "key", "type": "singleLineText"}, {"name": "version", "type": "number"},
                  {"name": "updated_at", "type": "singleLineText"}, {"name": "a", "type": "multilineText"}]
        emu.control("PUT", f"bases/{backend.settings.airtable_base_id}", {"tables": [{"name": "t", "fields": fields, "records": [
            {"key": k, "version": v, "updated_at": t, "a": f'"{a}"'} for k, v, t, a in rows]}]})
    store = backend.open()
    assert store.get("t", "acme").data == {"a": "newest"}  # highest version, then latest stamp
    assert sorted((r.key, r.data["a"]) for r in store.list("t")) == [("acme", "newest"), ("b", "x")]
    assert store.upsert("t", "acme", {"a": "next"}, expected_version=3).version == 4
    assert sorted(_raw_keys(backend, "t")) == ["acme", "b"]
    assert store.get("t", "acme").data == {"a": "next"}
