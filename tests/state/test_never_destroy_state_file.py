"""The JSON state file is only ever rewritten when it was read back in full as ours.

Anything else -- another program's JSON, extra keys, a truncated file -- is refused with one
line naming the file and the problem, and the file keeps every byte.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from aios.core.triage import Triage
from aios.runs.recorder import record_run
from aios.runs.record import RunStatus, SkillRun
from aios.state import JsonStore, StateError, StateSettings, open_store

TS = "2024-05-01T12:00:00+00:00"
ROW = {"version": 1, "updated_at": TS, "data": {"a": 1}}


def _refused(path: Path, write, problem: str) -> None:  # noqa: ANN001
    before = path.read_bytes()
    with pytest.raises(StateError) as ei:
        write()
    msg = str(ei.value)
    assert "\n" not in msg and str(path) in msg and problem in msg, msg
    assert path.read_bytes() == before


def test_aios_run_does_not_overwrite_a_state_file_in_another_shape(tmp_path: Path) -> None:
    """The issue's case: a file with 'leads' and no 'tables' lost 'leads' to the next `aios run`."""
    path = tmp_path / "state" / "aios.json"  # the default location under AIOS_HOME
    path.parent.mkdir()
    path.write_text(json.dumps({"leads": {"acme": {"status": "won"}}, "format": "mine"}, indent=2))
    before = path.read_bytes()
    run = SkillRun(run_id="r1", skill="research-lead", triage=Triage.critical, status=RunStatus.completed)
    asyncio.run(record_run(run))  # a paid answer is never lost: the refused record goes to the journal
    assert path.read_bytes() == before
    assert run.not_recorded and "'format' is 'mine'" in run.not_recorded and "\n" not in run.not_recorded
    _refused(path, lambda: open_store().upsert("runs", "r1", {"ok": True}), "not an aios state file")


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"format": "aios-state/1", "leads": {"acme": {}}}, "no 'tables' object"),
        ({"format": "aios-state/1", "tables": {}, "notes": "mine"}, "unexpected top-level key(s) 'notes'"),
        ({"tables": {"t": {"k": ROW}}}, "'format' is None"),
        ({"format": "aios-state/1", "tables": {"t": {"k": {**ROW, "note": "mine"}}}}, "table 't' key 'k' is malformed"),
        ({"format": "aios-state/1", "tables": {"t": {"k": {**ROW, "version": True}}}}, "table 't' key 'k' is malformed"),
        ({"format": "aios-state/1", "tables": {"t": {"k": {**ROW, "updated_at": "yesterday"}}}}, "key 'k' is malformed"),
        ([ROW], "expected a JSON object, found list"),
    ],
)
def test_a_file_that_is_not_exactly_ours_is_never_rewritten(tmp_path: Path, doc: object, problem: str) -> None:
    path = tmp_path / "aios.json"
    path.write_text(json.dumps(doc))
    store = JsonStore(path)
    _refused(path, lambda: store.upsert("runs", "r1", {"ok": True}), problem)
    _refused(path, lambda: store.upsert_many("runs", [("r1", {"ok": True})]), problem)
    _refused(path, lambda: store.delete("t", "k"), problem)


def test_duplicate_keys_are_refused_not_collapsed(tmp_path: Path) -> None:
    """json.loads keeps the last of two equal keys: rewriting would drop the first table silently."""
    path = tmp_path / "aios.json"
    path.write_text('{"format": "aios-state/1", "tables": {"t": {}}, "tables": {"u": {}}}')
    _refused(path, lambda: JsonStore(path).upsert("t", "k", {"a": 1}), "key 'tables' appears twice")


def test_truncated_state_file_is_refused_at_every_cut(tmp_path: Path) -> None:
    """A file cut anywhere (also inside a multi-byte character) is one line, never replaced."""
    good = tmp_path / "good.json"
    store = JsonStore(good)
    store.upsert("leads", "café", {"note": "déjà vu →", "n": 1})
    store.upsert("leads", "b", {"n": 2})
    # as the user's editor saves it: the same JSON, accents as UTF-8 rather than \u escapes
    good.write_text(json.dumps(json.loads(good.read_text()), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert JsonStore(good).get("leads", "café").data == {"note": "déjà vu →", "n": 1}
    full = good.read_bytes()
    assert full.endswith(b"}\n") and "→".encode() in full
    path = tmp_path / "aios.json"
    for cut in range(1, len(full) - 1):
        path.write_bytes(full[:cut])
        store = JsonStore(path)
        for write in (lambda: store.upsert("runs", "r", {"ok": True}), lambda: store.list("leads")):
            with pytest.raises(StateError) as ei:
                write()
            msg = str(ei.value)
            assert "\n" not in msg and str(path) in msg and "corrupt state file" in msg, (cut, msg)
        assert path.read_bytes() == full[:cut], cut


def test_state_file_keeps_its_mode_and_its_symlink(tmp_path: Path) -> None:
    real = tmp_path / "synced" / "aios.json"
    JsonStore(real).upsert("t", "a", {"n": 1})
    real.chmod(0o640)
    link = tmp_path / "state" / "aios.json"
    link.parent.mkdir()
    link.symlink_to(real)
    JsonStore(link).upsert("t", "b", {"n": 2})
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert real.stat().st_mode & 0o777 == 0o640
    assert {r.key for r in JsonStore(real).list("t")} == {"a", "b"}


def test_a_new_state_file_is_private_to_the_user(tmp_path: Path) -> None:
    path = StateSettings(path=tmp_path / "s.json").json_path()
    JsonStore(path).upsert("t", "a", {"n": 1})
    assert path.stat().st_mode & 0o777 == 0o600
