"""The write journal never loses what the user has: every complete entry is kept or applied,
and a line that does not parse is set aside in a quarantine file beside the journal, never deleted.

Journal entries here are real: written by a store whose backend (the Airtable emulator) is down,
or serialised by the JournalEntry model itself. `aios state status` / `aios state sync` run through
the real Typer app.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aios.state import StateError, StateSettings, clear_store_cache, open_store
from aios.cli.state import state_app
from aios.state.journal import Journal, JournalEntry

from .conftest import AIRTABLE_TOKEN, Emulator, new_airtable_base


def _env(settings: StateSettings) -> dict[str, str]:
    """What a user would export to run `aios state ...` against this store and journal."""
    return {
        "AIOS_STATE_BACKEND": "airtable",
        "AIOS_STATE_AIRTABLE_BASE_ID": settings.airtable_base_id,
        "AIRTABLE_API_KEY": AIRTABLE_TOKEN,
        "AIOS_STATE_AIRTABLE_API_URL": settings.airtable_api_url,
        "AIOS_STATE_JOURNAL_PATH": str(settings.journal_file()),
        "AIOS_STATE_RETRY_ATTEMPTS": "2",
        "AIOS_STATE_RETRY_INITIAL_DELAY": "0.01",
        "AIOS_STATE_RETRY_MAX_DELAY": "0.02",
    }


def _settings(emu: Emulator, folder: Path, **extra: object) -> StateSettings:
    return StateSettings(
        backend="airtable",
        airtable_base_id=new_airtable_base(emu),
        airtable_token=AIRTABLE_TOKEN,
        airtable_api_url=emu.url,
        journal_path=folder / "journal.jsonl",
        retry_attempts=2,
        retry_initial_delay=0.01,
        retry_max_delay=0.02,
        **extra,
    )


def quarantine_of(journal: Path) -> Path:
    """Where lines that did not parse are set aside: beside the journal, named after it."""
    return journal.with_name(journal.name + ".quarantine")


def _cli(settings: StateSettings, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(state_app, list(args), env=_env(settings))
    return res.exit_code, res.output


def _status(settings: StateSettings) -> dict:
    code, out = _cli(settings, "status", "--json")
    assert code == 0, out
    return json.loads(out)


def _journal_three_writes_during_an_outage(emu: Emulator, settings: StateSettings) -> bytes:
    store = open_store("airtable", settings=settings)
    emu.fault("down")
    try:
        for n in (1, 2, 3):
            store.upsert("leads", f"lead{n}", {"n": n})
    finally:
        emu.clear_fault()
    clear_store_cache()  # the next process starts afresh
    raw = settings.journal_file().read_bytes()
    assert raw.count(b"\n") == 3 and raw.endswith(b"\n")
    return raw


def _backend_data(settings: StateSettings, table: str) -> dict[str, dict]:
    return {r.key: r.data for r in open_store("airtable", settings=settings).list(table)}


def test_entry_without_final_newline_after_removing_a_corrupt_line_is_kept_and_synced(
    tmp_path: Path, airtable_emulator: Emulator
) -> None:
    settings = _settings(airtable_emulator, tmp_path)
    path = settings.journal_file()
    raw = _journal_three_writes_during_an_outage(airtable_emulator, settings)
    lines = raw.split(b"\n")[:3]

    # a garbage line 2: one clear line, and the journal is left exactly as it is
    broken = lines[0] + b"\nthis is not json\n" + lines[1] + b"\n" + lines[2] + b"\n"
    path.write_bytes(broken)
    for args in (("status",), ("sync",)):
        code, out = _cli(settings, *args)
        assert code == 2, out
        assert f"{path}: line 2 is corrupt; fix or remove that line" in " ".join(out.split()), out
        assert "Traceback" not in out
        assert path.read_bytes() == broken

    # the user removes it; their editor saves without a final newline
    edited = b"\n".join(lines)
    path.write_bytes(edited)
    info = _status(settings)
    assert info["pending"] == 3 and info["notices"] == []
    assert path.read_bytes() == edited  # status reads, never writes

    code, out = _cli(settings, "sync")
    assert code == 0, out
    assert "applied 3" in out and "still pending 0" in out
    assert _backend_data(settings, "leads") == {"lead1": {"n": 1}, "lead2": {"n": 2}, "lead3": {"n": 3}}
    assert _status(settings)["pending"] == 0
    assert not quarantine_of(path).exists()  # nothing needed setting aside


def test_next_write_keeps_a_last_entry_that_has_no_final_newline(tmp_path: Path, airtable_emulator: Emulator) -> None:
    settings = _settings(airtable_emulator, tmp_path)
    path = settings.journal_file()
    raw = _journal_three_writes_during_an_outage(airtable_emulator, settings)
    path.write_bytes(raw.rstrip(b"\n"))
    store = open_store("airtable", settings=settings)
    airtable_emulator.fault("down")
    try:
        store.upsert("leads", "lead4", {"n": 4})
    finally:
        airtable_emulator.clear_fault()
    assert path.read_bytes().startswith(raw)  # the three entries untouched, now newline-terminated
    assert [e.key for e in Journal(path).entries()] == ["lead1", "lead2", "lead3", "lead4"]


def test_torn_last_line_is_quarantined_not_deleted(tmp_path: Path, airtable_emulator: Emulator) -> None:
    settings = _settings(airtable_emulator, tmp_path)
    path = settings.journal_file()
    raw = _journal_three_writes_during_an_outage(airtable_emulator, settings)
    torn = b'{"id": "9f2c", "store": "airtable:app'  # a crash mid-append
    path.write_bytes(raw + torn)

    info = _status(settings)
    quarantine = quarantine_of(path)
    assert info["pending"] == 3
    assert any("last line is incomplete" in n and str(quarantine) in n for n in info["notices"]), info
    assert path.read_bytes() == raw + torn and not quarantine.exists()

    code, out = _cli(settings, "sync")
    assert code == 0, out
    flat = " ".join(out.split())
    assert "applied 3" in flat and str(quarantine) in flat, out
    assert quarantine.read_bytes() == torn + b"\n"  # kept byte for byte, beside the journal
    assert _backend_data(settings, "leads") == {"lead1": {"n": 1}, "lead2": {"n": 2}, "lead3": {"n": 3}}
    info = _status(settings)
    assert info["pending"] == 0 and any(str(quarantine) in n and "1 line" in n for n in info["notices"])


def test_rewriting_the_journal_keeps_its_mode_and_its_symlink(tmp_path: Path, airtable_emulator: Emulator) -> None:
    """The user keeps the journal elsewhere behind a symlink, readable by them only: both survive a sync."""
    real = tmp_path / "elsewhere" / "journal.jsonl"
    settings = _settings(airtable_emulator, tmp_path / "real")
    raw = _journal_three_writes_during_an_outage(airtable_emulator, settings)
    real.parent.mkdir()
    real.write_bytes(raw)
    real.chmod(0o640)
    link = tmp_path / "state" / "journal.jsonl"
    link.parent.mkdir()
    link.symlink_to(real)
    settings = settings.model_copy(update={"journal_path": link})
    code, out = _cli(settings, "sync")
    assert code == 0 and "applied 3" in out, out
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert real.read_bytes() == b"" and real.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda e: {**e, "note": "mine"}, "a field we do not know would be dropped by the next rewrite"),
        (lambda e: {k: v for k, v in e.items() if k != "data"} | {"dta": e["data"]}, "a typo would replay as an empty record"),
        (lambda e: {**e, "data": None}, "an upsert without data would empty the record"),
    ],
)
def test_an_entry_edited_into_something_else_is_refused_not_rewritten(
    tmp_path: Path, airtable_emulator: Emulator, edit, why: str  # noqa: ANN001
) -> None:
    settings = _settings(airtable_emulator, tmp_path)
    path = settings.journal_file()
    lines = _journal_three_writes_during_an_outage(airtable_emulator, settings).split(b"\n")[:3]
    lines[1] = json.dumps(edit(json.loads(lines[1]))).encode()
    raw = b"\n".join(lines) + b"\n"
    path.write_bytes(raw)
    for args in (("status",), ("sync",)):
        code, out = _cli(settings, *args)
        assert code == 2 and "line 2 is corrupt; fix or remove that line" in " ".join(out.split()), (why, out)
        assert path.read_bytes() == raw, why
    base = airtable_emulator.control("GET", f"bases/{settings.airtable_base_id}")
    assert all(not t.get("records") for t in base.get("tables", [])), base  # nothing applied


# -- property: no complete entry is ever lost ------------------------------------------------------

GARBAGE = [b"not json", b'{"nope": 1}', b"\xff\xfe broken bytes", b"{", b'{"id": "x"}']
TAILS = ["newline", "no-newline", "torn", "garbage-no-newline"]


def _entry(store: str, key: str, n: int) -> JournalEntry:
    now = datetime.now(UTC)
    return JournalEntry(
        id=uuid.uuid4().hex, store=store, table="p", key=key, op="upsert", data={"n": n},
        version=1, updated_at=now, journaled_at=now,
    )


def lines_of(entries: list[JournalEntry]) -> list[bytes]:
    return [e.model_dump_json().encode() for e in entries]


@pytest.fixture(scope="module")
def prop_base(airtable_emulator: Emulator) -> str:
    return new_airtable_base(airtable_emulator)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(min_value=0, max_value=5),
    blanks=st.lists(st.integers(min_value=0, max_value=5), max_size=2),
    garbage=st.none() | st.tuples(st.integers(min_value=0, max_value=5), st.sampled_from(GARBAGE)),
    tail=st.sampled_from(TAILS),
    cut=st.integers(min_value=1, max_value=200),
    action=st.sampled_from(["sync", "write-while-down", "write-when-back"]),
)
def test_no_complete_entry_is_ever_lost(
    tmp_path: Path,
    airtable_emulator: Emulator,
    prop_base: str,
    n: int,
    blanks: list[int],
    garbage: tuple[int, bytes] | None,
    tail: str,
    cut: int,
    action: str,
) -> None:
    folder = tmp_path / uuid.uuid4().hex
    folder.mkdir()
    settings = StateSettings(
        backend="airtable",
        airtable_base_id=prop_base,
        airtable_token=AIRTABLE_TOKEN,
        airtable_api_url=airtable_emulator.url,
        journal_path=folder / "journal.jsonl",
        retry_attempts=2,
        retry_initial_delay=0.01,
        retry_max_delay=0.02,
        probe_interval=0.0,
    )
    path = settings.journal_file()
    run = uuid.uuid4().hex[:8]
    entries = [_entry(f"airtable:{prop_base}", f"{run}-{i}", i) for i in range(n)]
    lines = [e.model_dump_json().encode() for e in entries]
    for at in blanks:
        lines.insert(min(at, len(lines)), b"")
    if garbage is not None:
        lines.insert(min(garbage[0], len(lines)), garbage[1])
    torn = b""  # the unterminated bytes after the last newline, if any
    if tail == "torn":
        whole = _entry(f"airtable:{prop_base}", f"{run}-torn", 99).model_dump_json().encode()
        torn = whole[: min(cut, len(whole) - 1)]
    elif tail == "garbage-no-newline":
        torn = b"half a line"
    raw = b"".join(line + b"\n" for line in lines) + torn
    if tail == "no-newline" and raw.endswith(b"\n"):
        raw = raw[:-1]
    path.write_bytes(raw)
    quarantine = quarantine_of(path)
    # what the rules say about this file: a complete line that does not parse stops everything;
    # an unterminated last line that does not parse is a torn write, set aside by the next write
    *complete, last = raw.split(b"\n")
    corrupt = any(line.strip() and line not in set(lines_of(entries)) for line in complete)
    torn = b"" if last in set(lines_of(entries)) or not last.strip() else last

    # status: reads only, and counts every complete entry
    code, out = _cli(settings, "status", "--json")
    assert path.read_bytes() == raw
    if corrupt:
        assert code == 2 and "is corrupt; fix or remove that line" in out, out
    else:
        assert code == 0, out
        assert json.loads(out)["pending"] == n

    new_key = f"{run}-new"
    if action == "sync":
        code, out = _cli(settings, "sync")
        assert "Traceback" not in out
        if corrupt:
            assert code == 2, out
        else:
            assert code == 0, out
    else:
        store = open_store("airtable", settings=settings)
        if action == "write-while-down":
            airtable_emulator.fault("down")
        try:
            if corrupt:
                with pytest.raises(StateError, match="is corrupt; fix or remove that line"):
                    store.upsert("p", new_key, {"n": 100})
            else:
                store.upsert("p", new_key, {"n": 100})
        finally:
            airtable_emulator.clear_fault()
        clear_store_cache()

    if corrupt:  # refused: every byte the user had is still there
        assert path.read_bytes() == raw and not quarantine.exists()
        return
    # whatever happened, a final sync brings every complete entry (and the new write) to the backend
    code, out = _cli(settings, "sync")
    assert code == 0, out
    data = _backend_data(settings, "p")
    want = {e.key: e.data for e in entries}
    if action != "sync":
        want[new_key] = {"n": 100}
    assert {k: v for k, v in data.items() if k.startswith(run)} == want
    assert Journal(path).entries() == []
    if torn.strip():
        assert quarantine.read_bytes() == torn + b"\n"
    else:
        assert not quarantine.exists()
