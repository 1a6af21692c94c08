"""A scheduled records run on the emulators: 20 leads in Airtable, Google Sheets or the JSON store.

Real parts only: the real `anthropic`/`openai` SDKs, `pyairtable` and `gspread` against the
emulators, and a real Prefect server. Faults are switched at the wire (emulator rules with `times`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from aios.core.workflow import PROGRESS_TABLE, Progress
from aios.runs.record import RecordsRun
from aios.state import clear_store_cache, open_store
from flows.records import build_records_flow

pytestmark = pytest.mark.e2e

SKILL = "research-lead"
OPUS, GPT = "claude-opus-5-5", "gpt-5.5"
STEPS = ("research", "qualify", "draft")
LEADS = {f"lead-{i:02d}": {"company": f"Company {i}", "website": f"https://c{i}.example", "contact": f"Person {i}", "status": "new"} for i in range(1, 21)}
EDITED = "lead-07"
FAST_STATE = {
    "AIOS_STATE_RETRY_ATTEMPTS": 2,
    "AIOS_STATE_RETRY_INITIAL_DELAY": 0.01,
    "AIOS_STATE_RETRY_MAX_DELAY": 0.05,
    "AIOS_STATE_RETRY_MAX_TOTAL": 2,
    "AIOS_STATE_RATE_WINDOW_SCALE": 0.02,
    "AIOS_STATE_PROBE_INTERVAL": 60,
}


@pytest.fixture(params=["airtable", "sheets", "json"])
def leads_store(request, emulator, settings_env):
    """Where research-lead's `leads` live for this test, with 20 new leads in it."""
    backend, url = request.param, emulator.base_url
    env: dict = {"AIOS_TARGETS": f"anthropic:{OPUS},openai:{GPT}", "AIOS_BREAKER_THRESHOLD": 1000, **FAST_STATE}
    if backend == "airtable":
        env |= {"AIOS_STATE_SKILL_BACKENDS": json.dumps({SKILL: "airtable"}), "AIOS_STATE_AIRTABLE_BASE_ID": "app" + uuid.uuid4().hex[:14],
                "AIRTABLE_API_KEY": "emulator-token", "AIOS_STATE_AIRTABLE_API_URL": f"{url}/airtable"}
    elif backend == "sheets":
        env |= {"AIOS_STATE_SKILL_BACKENDS": json.dumps({SKILL: "sheets"}), "AIOS_STATE_SHEETS_SPREADSHEET": "sheet" + uuid.uuid4().hex[:12],
                "AIOS_STATE_SHEETS_TOKEN": "emulator-token", "AIOS_STATE_SHEETS_API_URL": f"{url}/sheets"}
    settings_env(**env)
    clear_store_cache()
    store = open_store(skill=SKILL)
    for table in ("leads", PROGRESS_TABLE):  # the JSON store is the session's: start from empty tables
        for rec in store.list(table):
            store.delete(table, rec.key)
    store.upsert_many("leads", list(LEADS.items()))
    yield store
    clear_store_cache()


async def scheduled_run() -> RecordsRun:
    state = await build_records_flow(SKILL)(return_state=True)
    return RecordsRun.model_validate(await state.result(raise_on_failure=False))


def person_edits_during_wave_two(emulator, store, errors: list) -> threading.Thread:
    """A person edits one lead in their sheet while the run is in its second step (OpenAI is answering)."""

    def edit():
        try:
            deadline = time.monotonic() + 60
            while not emulator.requests("openai") and time.monotonic() < deadline:
                time.sleep(0.05)
            lead = store.get("leads", EDITED)
            store.upsert("leads", EDITED, {**lead.data, "status": "contacted", "notes": "called them myself"}, expected_version=lead.version)
        except Exception as exc:  # noqa: BLE001 - reported by the test, not swallowed
            errors.append(exc)

    thread = threading.Thread(target=edit, daemon=True)
    thread.start()
    return thread


async def test_scheduled_run_resumes_failed_steps_on_openai_and_never_overwrites_a_persons_edit(emulator, leads_store):
    # Anthropic answers every first step, then fails 10 second steps (529), then answers again.
    emulator.set_fault("anthropic", "ok", model=OPUS, times=20)
    emulator.set_fault("anthropic", "overloaded", times=10)
    emulator.set_fault("openai", "slow", delay=0.5)  # the person's window: OpenAI's answers take a while
    errors: list = []
    person = person_edits_during_wave_two(emulator, leads_store, errors)

    run = await scheduled_run()
    person.join(10)
    assert not errors

    assert run.keys("conflict") == [EDITED]
    assert sorted(run.keys("written")) == sorted(set(LEADS) - {EDITED})
    edited = leads_store.get("leads", EDITED).data
    assert (edited["status"], edited["notes"]) == ("contacted", "called them myself"), "the person's edit stands"

    progress = {k: Progress.model_validate(leads_store.get(PROGRESS_TABLE, Progress.key_for(SKILL, "leads", k)).data) for k in LEADS}
    failed_over = sorted(k for k, p in progress.items() if p.steps["qualify"].provider == "openai")
    assert len(failed_over) == 10
    for key in failed_over:
        p = progress[key]
        assert p.steps["research"].provider == "anthropic", "step 1 was not redone on OpenAI"
        assert next(r for r in run.records if r.key == key).steps_run[:2] == ["research", "qualify"]
    # every step was answered exactly once: one successful model request per checkpoint
    answered = [r for r in emulator.requests() if r["status"] == 200]
    assert len(answered) == sum(len(p.steps) for p in progress.values())
    for key in set(LEADS) - {EDITED}:
        lead = leads_store.get("leads", key).data
        assert lead["status"] in ("qualified", "disqualified") and lead["next_step"]
        assert [lead[f"step_{s}"] for s in STEPS] == ["done"] * 3
        assert "email_body" not in lead, "undeclared fields stay in the progress, not in the user's table"

    emulator.clear_faults()
    emulator.clear_requests()
    second = await scheduled_run()
    assert second.records == [] and emulator.requests() == [], "nothing pending: no model is called"


async def test_one_record_by_hand_resumes_at_its_first_unfinished_step(emulator, leads_store):
    key = "lead-03"
    first = await build_records_flow(SKILL)(record=key, return_state=True)
    assert RecordsRun.model_validate(await first.result()).keys("written") == [key]
    # a person resets the lead and its last step; the next run does only that step
    store = leads_store
    progress_key = Progress.key_for(SKILL, "leads", key)
    stored = store.get(PROGRESS_TABLE, progress_key)
    progress = Progress.model_validate(stored.data)
    del progress.steps["draft"]
    store.upsert(PROGRESS_TABLE, progress_key, progress.model_dump(mode="json"))
    emulator.clear_requests()
    again = RecordsRun.model_validate(await (await build_records_flow(SKILL)(record=key, return_state=True)).result())
    assert again.records[0].steps_run == ["draft"]
    assert len(emulator.requests()) == 1
