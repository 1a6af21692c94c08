"""The stores pace themselves under the services' published rate limits (no 429 to react to)."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest

from aios.state import StateSettings, open_store
from aios.core.retry_after import parse_retry_after

from .conftest import make_backend

PROCS = 4
PER_PROC = 25
# windows shortened by the same factor on both sides so the test is quick
SCALE = {"airtable": 0.2, "sheets": 0.05}


def _burst(name: str, settings: StateSettings, home: str, wid: int) -> None:
    os.environ["AIOS_HOME"] = home
    store = open_store(name, settings=settings)
    for j in range(PER_PROC):
        store.upsert("burst", f"w{wid}-{j:02d}", {"w": wid, "j": j})
    assert store.pending() == []


@pytest.mark.parametrize("name", ["sheets", "airtable"])
def test_a_burst_of_100_upserts_from_4_processes_never_hits_the_rate_limit(name: str, tmp_path: Path, request) -> None:  # noqa: ANN001
    backend = make_backend(name, tmp_path, request, rate_window_scale=SCALE[name])
    emu = backend.emulator
    backend.open().upsert("burst", "w0-00", {"w": 0, "j": 0})  # the table exists before the burst
    emu.control("PUT", "limits", {"enabled": True, "scale": SCALE[name]})
    emu.control("DELETE", "requests")
    try:
        ctx = mp.get_context("spawn")
        procs = [
            ctx.Process(target=_burst, args=(name, backend.settings, str(tmp_path / f"home{i}"), i)) for i in range(PROCS)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(180)
        assert [p.exitcode for p in procs] == [0] * PROCS
        limits = emu.control("GET", "limits")
    finally:
        emu.control("DELETE", "limits")
    assert limits["enabled"] and limits["rejected"] == 0
    assert 429 not in {r["status"] for r in emu.control("GET", "requests")["requests"]}
    keys = sorted(r.key for r in backend.open().list("burst"))
    assert keys == sorted(f"w{w}-{j:02d}" for w in range(PROCS) for j in range(PER_PROC))


def test_the_emulators_enforce_the_published_limits(tmp_path: Path, request) -> None:  # noqa: ANN001
    """Unpaced clients do run into the limits: Airtable's 429 has no Retry-After and blocks the base."""
    import requests as http

    for name, scale in (("airtable", 0.2), ("sheets", 0.05)):
        backend = make_backend(name, tmp_path / name, request)
        emu = backend.emulator
        if name == "airtable":
            url = f"{emu.url}/v0/meta/bases/{backend.settings.airtable_base_id}/tables"
            token = backend.settings.airtable_token.get_secret_value()
        else:
            url = f"{emu.url}/v4/spreadsheets/{backend.settings.sheets_spreadsheet}"
            token = backend.settings.sheets_token.get_secret_value()
        emu.control("PUT", "limits", {"enabled": True, "scale": scale})
        try:
            with http.Session() as s:
                s.headers["Authorization"] = f"Bearer {token}"
                answers = [s.get(url, timeout=5) for _ in range(70)]
        finally:
            emu.control("DELETE", "limits")
        statuses = [r.status_code for r in answers]
        limit = 5 if name == "airtable" else 60
        assert statuses[:limit] == [200] * limit and 429 in statuses[limit:]
        rejected = answers[statuses.index(429)]
        assert "Retry-After" not in rejected.headers
        if name == "airtable":
            assert rejected.json()["errors"][0]["error"] == "RATE_LIMIT_REACHED"
            assert set(statuses[limit:]) == {429}  # the penalty: blocked, not just throttled
        else:
            assert rejected.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    from email.utils import format_datetime
    from datetime import UTC, datetime, timedelta

    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("0.5") == 0.5
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 100 < parse_retry_after(later) <= 120
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=120), usegmt=True)
    assert parse_retry_after(past) == 0.0
    assert parse_retry_after("soon") is None
