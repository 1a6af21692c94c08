"""Records skills during outages, on the real stack: a Sheets outage mid-run, a defer skill parking
record by record and resuming each on Claude, a drop skill saying which records it skipped, and the
weekly report reading the qualified leads.

Faults are switched at the wire: the Sheets emulator answers 503 (`down`), Anthropic 529 after a
number of answers (`times`). Defer and drop records skills live in a temporary project
(AIOS_HOME), never in skills/.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client

from aios.config.entrypoints import attribute_name
from aios.core.workflow import PROGRESS_TABLE, Progress
from aios.outage import deferral
from aios.outage.drainer import drain_deferred
from aios.runs.record import RecordsRun, RunStatus, SkillRun
from aios.state import clear_store_cache, open_store
from flows.records import build_records_flow
from flows.skill_flow import build_skill_flow
from tests.records.test_records_e2e import FAST_STATE, GPT, OPUS, STEPS

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SKILL = "research-lead"
LEADS = {f"lead-{i}": {"company": f"Company {i}", "website": f"https://c{i}.example", "contact": f"Person {i}", "status": "new"} for i in range(1, 5)}


def fresh_leads(store, leads: dict) -> None:
    """The session's store starts this test with exactly these leads and no progress."""
    for table in ("leads", PROGRESS_TABLE):
        for rec in store.list(table):
            store.delete(table, rec.key)
    store.upsert_many("leads", list(leads.items()))


async def records_run(name: str, **params) -> RecordsRun:
    state = await build_records_flow(name)(return_state=True, **params)
    return RecordsRun.model_validate(await state.result(raise_on_failure=False))


def progress_of(store, skill: str, key: str) -> Progress:
    return Progress.model_validate(store.get(PROGRESS_TABLE, Progress.key_for(skill, "leads", key)).data)


# --- 1. Sheets goes down in the middle of a run --------------------------------------------------


def sheet_rows(url: str, spreadsheet: str, worksheet: str) -> dict[str, dict]:
    """A worksheet as the emulator holds it: key -> row (header row 1), one entry per row (duplicates fail)."""
    book = httpx.get(f"{url}/sheets/_control/spreadsheets/{spreadsheet}").raise_for_status().json()
    header, *rows = book["sheets"][worksheet]
    found = [dict(zip(header, row, strict=False)) for row in rows if row and row[0]]
    by_key = {row["key"]: row for row in found}
    assert len(by_key) == len(found), f"{worksheet}: a key has more than one row"
    return by_key


def sheets_down_at_first_model_request(emulator, errors: list) -> threading.Thread:
    """Sheets answers 503 from the moment Claude gets the first question (the leads were read already)."""

    def flip():
        try:
            deadline = time.monotonic() + 60
            while not emulator.requests("anthropic") and time.monotonic() < deadline:
                time.sleep(0.02)
            httpx.put(f"{emulator.base_url}/sheets/_control/faults", json={"mode": "down"}).raise_for_status()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=flip, daemon=True)
    thread.start()
    return thread


async def test_progress_written_during_a_sheets_outage_reaches_the_sheet_once_on_recovery(emulator, settings_env):
    url, spreadsheet = emulator.base_url, "sheet" + uuid.uuid4().hex[:12]
    settings_env(AIOS_TARGETS=f"anthropic:{OPUS}", AIOS_BREAKER_THRESHOLD=1000, AIOS_STATE_SKILL_BACKENDS=json.dumps({SKILL: "sheets"}),
                 AIOS_STATE_SHEETS_SPREADSHEET=spreadsheet, AIOS_STATE_SHEETS_TOKEN="emulator-token",
                 AIOS_STATE_SHEETS_API_URL=f"{url}/sheets", **FAST_STATE)
    clear_store_cache()
    store = open_store(skill=SKILL)
    fresh_leads(store, LEADS)
    emulator.set_fault("anthropic", "slow", delay=1.0)  # the outage starts while Claude thinks
    errors: list = []
    try:
        flip = sheets_down_at_first_model_request(emulator, errors)
        run = await records_run(SKILL)
        flip.join(10)
        assert not errors
        assert sorted(run.keys("written")) == sorted(LEADS), run.records
        during = sheet_rows(url, spreadsheet, "leads")
        assert all(row["status"] == "new" and not row.get("step_research") for row in during.values()), "nothing reached the sheet yet"
        assert store.pending(), "the writes wait in the journal"
    finally:
        httpx.delete(f"{url}/sheets/_control/faults").raise_for_status()
        clear_store_cache()

    report = store.sync()
    assert report.remaining == 0 and not report.conflicts and not store.pending()
    leads = sheet_rows(url, spreadsheet, "leads")
    assert sorted(leads) == sorted(LEADS), "one row per lead: no write appended a second row"
    for key, row in leads.items():
        assert [row[f"step_{s}"] for s in STEPS] == ["done"] * 3
        assert row["status"] in ("qualified", "disqualified") and row["next_step"]
        # seeded (1), three steps marked (2-4), the answer (5): each journaled write applied exactly once
        assert str(row["version"]) == "5", (key, row["version"])
    progress = sheet_rows(url, spreadsheet, PROGRESS_TABLE)
    assert sorted(progress) == sorted(Progress.key_for(SKILL, "leads", k) for k in LEADS)
    assert [p for p in progress.values() if str(p["version"]) != "3"] == [], "one checkpoint write per step"
    assert store.sync().applied == 0, "a second sync has nothing left to apply"


# --- 2. Per-record triage: a defer skill parks record by record, a drop skill says what it skipped ---


def project_with(tmp_path: Path, name: str, triage: str) -> Path:
    """A temporary project whose only skill is research-lead renamed `name`, with triage `triage`."""
    home = tmp_path / "project"
    for folder in ("knowledge", "memory"):
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, home / folder, ignore=shutil.ignore_patterns(".*"))
    skill = home / "skills" / name
    shutil.copytree(ROOT / "skills" / SKILL, skill)
    (skill / "records.sample.json").unlink()
    text = (skill / "SKILL.md").read_text()
    (skill / "SKILL.md").write_text(text.replace(f"name: {SKILL}", f"name: {name}").replace("triage: critical", f"triage: {triage}"))
    return home


async def deploy(name: str, home: Path) -> None:
    """The skill's deployment (parked runs are runs of it); a worker would run it in `home` too."""
    from deployments.apply import ensure_pool

    await ensure_pool()
    async with get_client() as client:
        flow_id = await client.create_flow_from_name(name)
        await client.create_deployment(flow_id=flow_id, name=name, work_pool_name="aios", work_queue_name="default",
                                       entrypoint=f"flows/records.py:{attribute_name(name)}", path=str(ROOT),
                                       job_variables={"env": {"AIOS_HOME": str(home)}})


async def parked_records(name: str) -> list[str]:
    """The record of every run of `name` waiting in the deferred queue."""
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(f"{name}/{name}")
    return sorted(r.parameters["record"] for r in await deferral.parked_runs() if r.deployment_id == deployment.id)


@pytest.fixture
def only_the_drainer(deployed):
    """The session's process worker also polls the resumed deferred queue and may claim a parked run first;
    here the drainer alone resumes them (a worker and a drainer together: tests/flows/test_drainer.py)."""
    session_workers = sum(p.name.startswith("worker") for p in deployed.processes)
    deployed.stop_workers()
    yield
    if session_workers:
        deployed.start_workers(session_workers)


@pytest.fixture
def records_project(tmp_path, emulator, settings_env):
    """`make(name, triage)`: a temporary project with that records skill and four new leads."""

    def make(name: str, triage: str):
        home = project_with(tmp_path, name, triage)
        settings_env(AIOS_HOME=home, AIOS_TARGETS=f"anthropic:{OPUS},openai:{GPT}", AIOS_BREAKER_THRESHOLD=1000)
        clear_store_cache()
        store = open_store(skill=name)
        fresh_leads(store, LEADS)
        return home, store

    return make


async def test_a_defer_skill_parks_only_unfinished_records_once_each_and_they_resume_on_claude(emulator, records_project, only_the_drainer):
    name = "nurture-lead"
    home, store = records_project(name, "defer")
    await deploy(name, home)
    await deferral.set_paused(True)  # Claude is down: the status check paused the queue
    try:
        # Claude answers every research step and 3 of 4 qualify steps, fails one qualify and one draft (529)
        emulator.set_fault("anthropic", "ok", model=OPUS, times=4 + 3)
        emulator.set_fault("anthropic", "overloaded", times=2)
        first = await records_run(name)
        assert len(first.keys("written")) == 2, first.records
        parked = {r.key: r.parked_run_id for r in first.records if r.outcome == "deferred"}
        assert sorted(parked) == sorted(set(LEADS) - set(first.keys("written"))) and len(set(parked.values())) == 2

        emulator.set_fault("anthropic", "overloaded")  # still down for the next scheduled run
        second = await records_run(name)
        assert {r.key: r.parked_run_id for r in second.records} == parked, "each record keeps its one parked run"
        assert await parked_records(name) == sorted(parked)
        assert not emulator.requests("openai"), "a defer skill never runs on the secondary"
        before = {k: progress_of(store, name, k) for k in parked}
        assert sorted(len(p.steps) for p in before.values()) == [1, 2], "one parked at qualify, one at draft"
    finally:
        emulator.clear_faults()
        await deferral.set_paused(False)  # Claude is back

    emulator.clear_requests()
    stats = await drain_deferred({name: build_records_flow(name)}, concurrency=4, idle_polls=2, poll_seconds=0.2)
    assert (stats.started, stats.completed, stats.failed) == (2, 2, 0)
    for key, was in before.items():
        now = progress_of(store, name, key)
        assert set(now.steps) == set(STEPS) and all(s.provider == "anthropic" for s in now.steps.values())
        assert {s: now.steps[s].run_id for s in was.steps} == {s: d.run_id for s, d in was.steps.items()}, "finished steps were not redone"
        lead = store.get("leads", key).data
        assert lead["status"] in ("qualified", "disqualified") and lead["step_draft"] == "done"
    unfinished = sum(len(STEPS) - len(p.steps) for p in before.values())
    assert len(emulator.requests("anthropic")) == unfinished == 3, "each record resumed at its first unfinished step"
    assert await parked_records(name) == []


async def test_a_drop_skill_skips_records_during_an_outage_and_records_which(emulator, records_project):
    name = "tidy-lead"
    _, store = records_project(name, "drop")
    emulator.set_fault("anthropic", "overloaded")
    run = await records_run(name)
    assert sorted(run.keys("dropped")) == sorted(LEADS)
    recorded = store.get("runs", run.run_id).data
    assert recorded["kind"] == "records"
    assert sorted(r["key"] for r in recorded["records"] if r["outcome"] == "dropped") == sorted(LEADS)
    assert all(store.get("leads", k).data == v for k, v in LEADS.items()), "skipped records are left as they were"
    assert not emulator.requests("openai"), "a drop skill never runs on the secondary"


# --- 3. The weekly report reads the qualified leads ------------------------------------------------


async def test_the_weekly_report_is_given_the_qualified_leads_from_the_store(emulator, settings_env):
    settings_env(AIOS_TARGETS=f"anthropic:{OPUS}")
    clear_store_cache()
    store = open_store(skill="weekly-report")
    qualified = {"acme": {"company": "Acme", "status": "qualified", "score": 81, "next_step": "call"},
                 "bolt": {"company": "Bolt", "status": "qualified", "score": 64, "next_step": "demo"}}
    fresh_leads(store, {**qualified, "cargo": {"company": "Cargo", "status": "new"}, "dune": {"company": "Dune", "status": "disqualified"}})
    state = await build_skill_flow("weekly-report")(return_state=True)
    run = SkillRun.model_validate(await state.result())
    assert run.status is RunStatus.completed
    given = run.inputs["leads"]
    assert sorted(lead["key"] for lead in given) == ["acme", "bolt"], "the store's qualified leads, not the samples"
    assert {lead["key"]: (lead["company"], lead["next_step"]) for lead in given} == {k: (v["company"], v["next_step"]) for k, v in qualified.items()}
    assert run.inputs["week"] == "2026-W47"
