"""Several PROCESSES writing to the emulated Sheets/Airtable: optimistic retry loops lose nothing."""

from __future__ import annotations

import multiprocessing as mp

from aios.state import StateSettings, VersionConflict, open_store

from .conftest import Backend

PROCS = 4
INCREMENTS = 5


def _worker(name: str, settings: StateSettings, wid: int, out: mp.Queue) -> None:
    store = open_store(name, settings=settings)
    conflicts = 0
    for j in range(INCREMENTS):
        store.upsert("own", f"w{wid}-{j}", {"writer": wid, "j": j})
        while True:
            cur = store.get("shared", "counter")
            try:
                store.upsert(
                    "shared",
                    "counter",
                    {"n": (cur.data["n"] if cur else 0) + 1},
                    expected_version=cur.version if cur else 0,
                )
                break
            except VersionConflict:
                conflicts += 1
    out.put(conflicts)


def test_processes_with_expected_version_loops_lose_no_update(remote: Backend) -> None:
    ctx = mp.get_context("spawn")  # fork is unsafe once Prefect has started threads
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(remote.name, remote.settings, i, out)) for i in range(PROCS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    conflicts = sum(out.get(timeout=5) for _ in procs)
    store = remote.open()
    counter = store.get("shared", "counter")
    assert counter.data == {"n": PROCS * INCREMENTS}
    assert counter.version == PROCS * INCREMENTS
    own = store.list("own")
    assert len(own) == PROCS * INCREMENTS and all(r.version == 1 for r in own)
    assert conflicts >= 0  # how many retries were needed depends on scheduling
    assert store.pending() == []


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
