"""Remote backends under faults: retries, the journal, replay in order, nothing applied twice."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr

from aios.state import BackendUnavailable, StateError, VersionConflict, open_store
from aios.state.journal import JournaledStore, conflicts, pending, sync
from aios.core.retry_after import parse_retry_after
from aios.state.retry import RetryPolicy, TransientError

from .conftest import Backend, free_port, make_backend


def _writes(backend: Backend, table: str) -> list[tuple[str, int, Any]]:
    """(key, version, data field i) for every record write the emulator saw on ``table``, in order."""
    out = []
    for entry in backend.emulator.log():
        if backend.name == "sheets":
            vals = entry.get("values") or []
            if entry["sheet"] != table or not vals or vals[0] in ("key", "") or entry["op"].startswith(("clear", "delete")):
                continue
            header = ["key", "version", "updated_at", "i"]
            row = dict(zip(header, vals, strict=False))
            out.append((row["key"], int(row["version"]), int(row["i"])))
        else:
            if entry["table"] != table or entry["op"] == "delete":
                continue
            f = entry["fields"]
            out.append((f["key"], int(f["version"]), int(f["i"])))
    return out


def test_retry_on_429_and_500_then_success(remote: Backend) -> None:
    store = remote.open()
    emu = remote.emulator
    store.upsert("t", "warmup", {"i": 0})  # metadata cached, table exists
    emu.fault("rate_limited", times=2, retry_after=0.01)
    rec = store.upsert("t", "k", {"i": 1})
    assert rec.version == 1
    emu.fault("error_500", times=2)
    assert store.get("t", "k").data == {"i": 1}
    statuses = [r["status"] for r in emu.control("GET", "requests")["requests"]]
    assert 429 in statuses and 500 in statuses
    assert pending(remote.settings) == []


def test_slow_backend_still_answers(remote: Backend) -> None:
    store = remote.open()
    remote.emulator.fault("slow", times=2, delay=0.2)
    assert store.upsert("t", "k", {"i": 1}).version == 1
    assert store.get("t", "k").version == 1


def test_outage_during_100_writes_replays_in_order_exactly_once(remote: Backend) -> None:
    store = remote.open()
    emu = remote.emulator
    table = "outage"
    store.upsert(table, "k0", {"i": -1})  # known before the outage: version 1
    emu.control("DELETE", "log")
    emu.fault("down")  # 503 until cleared
    try:
        returned = [store.upsert(table, f"k{i % 10}", {"i": i}) for i in range(100)]
        assert len(pending(remote.settings)) == 100
        # read-your-writes while down: the journal answers
        assert store.get(table, "k3").data == {"i": 93}
        with pytest.raises(BackendUnavailable):
            store.sync()
    finally:
        emu.clear_fault()
    # k0 was seen at version 1, so its provisional versions are exact: 2..11
    assert [r.version for r in returned if r.key == "k0"] == list(range(2, 12))
    # the replay itself is interrupted: the 3rd batch is applied but every answer to it is lost
    # (3 attempts = the retry bound), as if the process died right after sending it.
    # Requests before it: the read, then per batch one write -- on sheets the 1st batch
    # takes two (k0 is updated in place, k1..k9 are appended)
    emu.fault("lost", after=4 if remote.name == "sheets" else 3, times=3)
    with pytest.raises(BackendUnavailable):
        store.sync()
    emu.clear_fault()
    assert len(pending(remote.settings)) == 80  # two batches trimmed, the in-flight one kept
    report = store.sync()
    assert (report.skipped, report.applied, report.conflicts, report.remaining) == (10, 70, [], 0)
    assert pending(remote.settings) == []
    writes = _writes(remote, table)
    first_seen = list(dict.fromkeys(i for _, _, i in writes))
    assert first_seen == list(range(100))  # in order
    by_version = {}
    for k, v, i in writes:  # a retried identical request may repeat a write; never a different one
        assert by_version.setdefault((k, v), i) == i
    assert len(by_version) == 100  # none twice
    for n in range(10):
        rec = store.get(table, f"k{n}")
        assert rec.data == {"i": 90 + n}
        assert rec.version == (11 if n == 0 else 10)
    assert sync(remote.settings).applied == 0


def test_replay_happens_automatically_when_backend_returns(tmp_path, request) -> None:  # noqa: ANN001
    for name in ("sheets", "airtable"):
        backend = make_backend(name, tmp_path / name, request, probe_interval=0.0)
        store = backend.open()
        store.upsert("t", "a", {"i": 0})
        backend.emulator.fault("down")
        try:
            store.upsert("t", "a", {"i": 1})
            store.delete("t", "a")
            store.upsert("t", "b", {"i": 2})
            assert len(store.pending()) == 3
            assert store.get("t", "a") is None  # the queued delete
        finally:
            backend.emulator.clear_fault()
        store.upsert("t", "c", {"i": 3})  # replays the queue first, then writes
        assert store.pending() == []
        assert store.get("t", "a") is None
        assert store.get("t", "b").data == {"i": 2}
        assert store.get("t", "c").data == {"i": 3}


def test_list_overlays_pending_writes(remote: Backend) -> None:
    store = remote.open(probe_interval=60.0)
    store.upsert_many("t", [("a", {"s": "x"}), ("b", {"s": "y"})])
    remote.emulator.fault("down", times=3)  # exactly one write's worth of retries
    store.upsert("t", "a", {"s": "y"})
    assert len(store.pending()) == 1
    # backend answers again but the probe interval has not passed: reads overlay the journal
    assert sorted(r.key for r in store.list("t", {"s": "y"})) == ["a", "b"]
    assert store.get("t", "a").data == {"s": "y"}
    assert store.sync().applied == 1
    assert sorted(r.key for r in store.list("t", {"s": "y"})) == ["a", "b"]


def test_batch_interrupted_midway_journals_only_the_rest(remote: Backend) -> None:
    store = remote.open()
    emu = remote.emulator
    store.upsert_many("t", [(f"k{i:02d}", {"i": -1}) for i in range(20)])  # header/fields exist
    items = [(f"k{i:02d}", {"i": i}) for i in range(40)]  # 20 updates + 20 new records
    emu.control("DELETE", "log")
    # airtable: the read + 2 batches of 10 get through, then it is down;
    # sheets writes a whole batch in one request (all or nothing): the read gets through
    airtable = remote.name == "airtable"
    emu.fault("down", after=3 if airtable else 1)
    try:
        recs = store.upsert_many("t", items)
    finally:
        emu.clear_fault()
    assert [r.version for r in recs] == [2] * 20 + [1] * 20
    queued = store.pending()
    expect = items[20:] if airtable else items
    assert [e.key for e in queued] == [k for k, _ in expect]
    assert [e.version for e in queued] == [r.version for r in recs[len(items) - len(expect):]]
    report = store.sync()
    assert (report.applied, report.remaining) == (len(expect), 0)
    assert {r.key: (r.version, r.data["i"]) for r in store.list("t")} == {
        k: (2 if n < 20 else 1, n) for n, (k, _) in enumerate(items)
    }
    written = _writes(remote, "t")
    assert sorted(k for k, _, _ in written) == sorted(k for k, _ in items)  # each exactly once


def test_conditional_write_that_conflicts_at_replay_is_set_aside(remote: Backend) -> None:
    a = remote.open()
    rec = a.upsert("t", "k", {"owner": "none"})
    remote.emulator.fault("down")
    try:
        queued = a.upsert("t", "k", {"owner": "a"}, expected_version=rec.version)
        assert queued.version == 2
        # a queued conditional write against a stale version fails fast
        with pytest.raises(VersionConflict):
            a.upsert("t", "k", {"owner": "again"}, expected_version=rec.version)
    finally:
        remote.emulator.clear_fault()
    # meanwhile another writer (no journal involved) wins the race
    b = remote.open(journal_path=remote.settings.journal_file().with_name("other.jsonl"))
    b.upsert("t", "k", {"owner": "b"}, expected_version=rec.version)
    report = a.sync()
    assert report.applied == 0 and len(report.conflicts) == 1 and report.remaining == 0
    assert a.get("t", "k").data == {"owner": "b"}
    assert [c.key for c in conflicts(remote.settings)] == ["k"]


def test_chained_conditional_writes_while_down_keep_working(remote: Backend) -> None:
    store = remote.open()
    rec = store.upsert("t", "n", {"v": 0})
    remote.emulator.fault("down")
    try:
        for i in range(1, 6):
            rec = store.upsert("t", "n", {"v": i}, expected_version=rec.version)
    finally:
        remote.emulator.clear_fault()
    report = store.sync()
    assert report.applied == 5 and not report.conflicts
    final = store.get("t", "n")
    assert final.data == {"v": 5} and final.version == 6


def test_connection_refused_goes_to_the_journal(tmp_path, request) -> None:  # noqa: ANN001
    backend = make_backend("airtable", tmp_path, request)
    dead = backend.settings.model_copy(update={"airtable_api_url": f"http://127.0.0.1:{free_port()}"})
    store = open_store("airtable", settings=dead)
    rec = store.upsert("t", "k", {"i": 1})
    assert rec.version == 1
    assert [e.key for e in pending(dead)] == ["k"]
    # the real endpoint is up: a manual sync with the right settings replays it
    report = sync(backend.settings)
    assert report.applied == 1
    assert backend.open().get("t", "k").data == {"i": 1}


def test_sync_reports_entries_for_other_stores(tmp_path, request) -> None:  # noqa: ANN001
    backend = make_backend("sheets", tmp_path, request)
    store = backend.open()
    store.upsert("t", "k", {"i": 1})
    backend.emulator.fault("down")
    try:
        store.upsert("t", "k", {"i": 2})
    finally:
        backend.emulator.clear_fault()
    other = backend.settings.model_copy(update={"sheets_spreadsheet": "some-other-book"})
    report = sync(other)
    assert report.remaining >= 1 and any("not the configured store" in e or "not found" in e for e in report.errors)
    assert len(pending(backend.settings)) == 1
    assert sync(backend.settings).applied == 1


def test_permanent_errors_are_not_journaled(remote: Backend) -> None:
    bad = remote.settings.model_copy(
        update={"sheets_token": SecretStr("wrong-token")}
        if remote.name == "sheets"
        else {"airtable_token": SecretStr("wrong-token")}
    )
    store = open_store(remote.name, settings=bad)
    with pytest.raises(StateError) as ei:
        store.upsert("t", "k", {"i": 1})
    assert not isinstance(ei.value, BackendUnavailable)
    assert "\n" not in str(ei.value)
    assert pending(bad) == []


def test_journal_file_is_json_lines_and_survives_a_torn_tail(remote: Backend) -> None:
    store = remote.open()
    store.upsert("t", "k", {"i": 0})
    remote.emulator.fault("down")
    try:
        store.upsert("t", "k", {"i": 1})
        path = remote.settings.journal_file()
        with open(path, "a") as fh:
            fh.write('{"id": "torn')  # a crash mid-append
        assert len(pending(remote.settings)) == 1
        store.upsert("t", "k", {"i": 2})
    finally:
        remote.emulator.clear_fault()
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["key"] == "k" for line in lines)
    assert store.sync().applied == 2
    assert store.get("t", "k").data == {"i": 2}


def test_corrupt_journal_is_one_line_error(tmp_path) -> None:  # noqa: ANN001
    from aios.state import StateSettings

    settings = StateSettings(journal_path=tmp_path / "j.jsonl")
    settings.journal_file().write_text('{"nope": 1}\n{"also": 2}\n')
    with pytest.raises(StateError) as ei:
        pending(settings)
    assert str(tmp_path / "j.jsonl") in str(ei.value) and "line 1" in str(ei.value) and "\n" not in str(ei.value)


def test_retry_policy_honours_retry_after_with_jitter_and_bound() -> None:
    p = RetryPolicy(attempts=4, initial=0.1, max_delay=1.0, max_total=10.0, jitter=0.5)
    for _ in range(50):
        assert 2.0 <= p.delay(1, 2.0) <= 2.5
        assert 0.1 <= p.delay(1, None) <= 0.15
        assert 0.8 <= p.delay(4, None) <= 1.2
        assert 1.0 <= p.delay(10, None) <= 1.5  # capped
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None

    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("429", retry_after=0.0)
        return "ok"

    assert RetryPolicy(attempts=5, initial=0, jitter=0).call(flaky) == "ok"
    assert len(calls) == 3

    def always() -> None:
        calls.append(1)
        raise TransientError("503", retry_after=0.0)

    calls.clear()
    with pytest.raises(TransientError):
        RetryPolicy(attempts=4, initial=0, jitter=0).call(always)
    assert len(calls) == 4
    # the time bound: a Retry-After beyond it stops retrying at once
    calls.clear()

    def far() -> None:
        calls.append(1)
        raise TransientError("429", retry_after=60.0)

    with pytest.raises(TransientError):
        RetryPolicy(attempts=10, max_total=1.0).call(far)
    assert len(calls) == 1


def test_json_store_is_not_journaled(tmp_path) -> None:  # noqa: ANN001
    from aios.state import JsonStore, StateSettings

    store = open_store(settings=StateSettings(path=tmp_path / "s.json"))
    assert isinstance(store, JsonStore) and not isinstance(store, JournaledStore)


def test_while_down_each_write_costs_one_probe_not_the_retry_budget(tmp_path, request) -> None:  # noqa: ANN001
    backend = make_backend("airtable", tmp_path, request, probe_interval=0.0)
    store = backend.open()
    store.upsert("t", "k", {"i": 0})
    emu = backend.emulator
    emu.fault("down")
    try:
        emu.control("DELETE", "requests")
        store.upsert("t", "k", {"i": 1})
        assert emu.request_count() == 3  # the retry bound (FAST_RETRY: 3 attempts)
        for i in range(2, 6):
            emu.control("DELETE", "requests")
            store.upsert("t", "k", {"i": i})
            assert emu.request_count() == 1  # one probe, no retries
    finally:
        emu.clear_fault()
    store.upsert("t", "k", {"i": 6})
    assert store.pending() == [] and store.get("t", "k").version == 7


def test_open_store_caches_remote_stores(remote: Backend) -> None:
    a, b = remote.open(), remote.open()
    assert a is b
    assert remote.open(probe_interval=1.0) is not a
