"""An answer already paid for is never thrown away: a record the state store refuses goes to the journal."""

from __future__ import annotations

import asyncio

from aios.core.triage import Triage
from aios.runs.record import RunStatus, SkillRun
from aios.state.journal import Journal


def test_a_run_record_the_state_store_refuses_goes_to_the_journal(tmp_path, monkeypatch):
    from aios.runs.recorder import record_run

    state = tmp_path / "state" / "aios.json"
    state.parent.mkdir()
    state.write_text('{"format": 1, "tables": {')  # truncated after the preflight read it
    journal = tmp_path / "state" / "journal.jsonl"
    monkeypatch.setenv("AIOS_HOME", str(tmp_path))
    monkeypatch.setenv("AIOS_STATE_BACKEND", "json")
    monkeypatch.setenv("AIOS_STATE_PATH", str(state))
    monkeypatch.setenv("AIOS_STATE_JOURNAL_PATH", str(journal))
    run = SkillRun(
        run_id="run-1", skill="research-lead", triage=Triage.critical, status=RunStatus.completed,
        provider="anthropic", model="claude-opus-5-5", output={"fit": "strong"},
    )

    asyncio.run(record_run(run))

    assert run.output == {"fit": "strong"}, "the answer stays with the run"
    assert run.not_recorded and "corrupt state file" in run.not_recorded and str(journal) in run.not_recorded
    [entry] = Journal(journal).entries()
    assert (entry.table, entry.key, entry.op) == ("runs", "run-1", "upsert")
    assert entry.data["output"] == {"fit": "strong"} and entry.store == f"json:{state}"
    assert state.read_text() == '{"format": 1, "tables": {', "the user's file is left as it was"
