"""The JSON store under concurrent writers: threads and processes, no lost update."""

from __future__ import annotations

import json
import multiprocessing as mp
import threading
from pathlib import Path

import pytest

from aios.state import JsonStore, StateError, VersionConflict

WRITERS = 20
N = 5


def _increment(store: JsonStore, table: str, key: str) -> int:
    """Optimistic read-modify-write; returns the number of conflicts seen."""
    conflicts = 0
    while True:
        cur = store.get(table, key)
        n = 0 if cur is None else cur.data["n"]
        try:
            store.upsert(table, key, {"n": n + 1}, expected_version=0 if cur is None else cur.version)
            return conflicts
        except VersionConflict:
            conflicts += 1


def _writer(path: str, wid: int, n: int) -> None:
    store = JsonStore(path)
    for j in range(n):
        store.upsert("own", f"w{wid}-{j}", {"writer": wid, "j": j})
        _increment(store, "shared", "counter")


def _check(path: Path, writers: int, n: int) -> None:
    json.loads(path.read_text())  # the file parses
    store = JsonStore(path)
    own = store.list("own")
    assert len(own) == writers * n
    assert all(r.version == 1 for r in own)
    counter = store.get("shared", "counter")
    assert counter is not None
    assert counter.data["n"] == writers * n
    assert counter.version == writers * n


def test_concurrent_processes_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "state" / "aios.json"
    ctx = mp.get_context("spawn")  # fork is unsafe once Prefect has started threads
    procs = [ctx.Process(target=_writer, args=(str(path), i, N)) for i in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    _check(path, WRITERS, N)


def test_concurrent_threads_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "aios.json"
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            _writer(str(path), i, N)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    # each thread its own store object, plus a shared one: both must be safe
    threads = [threading.Thread(target=run, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _check(path, WRITERS, N)


def test_shared_store_object_across_threads(tmp_path: Path) -> None:
    store = JsonStore(tmp_path / "aios.json")
    threads = [
        threading.Thread(target=lambda: [_increment(store, "t", "c") for _ in range(N)])
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("t", "c").data["n"] == 8 * N


def test_corrupt_file_is_one_line_error_naming_file(tmp_path: Path) -> None:
    path = tmp_path / "aios.json"
    path.write_text('{"tables": {"t": ')
    store = JsonStore(path)
    with pytest.raises(StateError) as ei:
        store.get("t", "k")
    msg = str(ei.value)
    assert str(path) in msg and "corrupt" in msg and "\n" not in msg
    with pytest.raises(StateError):
        store.upsert("t", "k", {"a": 1})
    # the corrupt file is left alone for the user to inspect
    assert path.read_text() == '{"tables": {"t": '


def test_wrong_shape_is_state_error(tmp_path: Path) -> None:
    path = tmp_path / "aios.json"
    path.write_text('{"format": "aios-state/1", "tables": {"t": {"k": {"version": "x"}}}}')
    with pytest.raises(StateError, match="malformed"):
        JsonStore(path).list("t")


def test_no_temp_files_left_behind(tmp_path: Path) -> None:
    store = JsonStore(tmp_path / "aios.json")
    for i in range(5):
        store.upsert("t", f"k{i}", {"i": i})
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
