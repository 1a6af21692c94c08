"""Retries are for infrastructure failures; a run left behind by a dead claimant is submitted again, once."""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from prefect import tags
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import StateType

from aios.outage import deferral, recovery
from aios.outage.drainer import claim_run
from aios.config.settings import get_settings
from aios.skills.loader import find_skill
from aios.state import open_store
from flows.skill_flow import build_skill_flow
from tests.flows.test_durable import Occurrence, wait_final

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


async def state_names(flow_run_id) -> list[str]:
    async with get_client() as client:
        return [s.name for s in await client.read_flow_run_states(flow_run_id)]


async def test_critical_skill_with_every_provider_down_fails_once_without_retries(emulator):
    emulator.set_fault("anthropic", "overloaded")
    emulator.set_fault("openai", "overloaded")
    state = await build_skill_flow("research-lead")(return_state=True)
    assert state.is_failed(), state.name
    run_id = state.state_details.flow_run_id
    names = await state_names(run_id)
    assert names.count("Running") == 1, f"a business failure is not retried: {names}"
    assert "AwaitingRetry" not in names, names
    record = open_store(skill="research-lead").get("runs", str(run_id))
    assert record is not None and record.data["status"] == "failed" and record.version == 1


async def test_a_run_whose_skill_raised_is_retried_once_and_completes(emulator, settings_env, tmp_path):
    """An exception (here: the skill's folder is unreadable on the first try) is what flow retries are for."""
    shutil.copytree(ROOT / "skills" / "research-lead", tmp_path / "skills" / "research-lead")
    settings_env(AIOS_HOME=tmp_path)
    research_lead = build_skill_flow("research-lead")  # built while the skill is readable: its Run form needs it
    skill_md = tmp_path / "skills" / "research-lead" / "SKILL.md"
    away = skill_md.with_name("SKILL.md.away")
    skill_md.rename(away)
    tag = f"infra-{uuid4().hex[:8]}"

    async def put_the_skill_back_after_the_first_failure() -> None:
        async with get_client() as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])))
                if runs and runs[0].state_name == "AwaitingRetry":
                    away.rename(skill_md)
                    return
                await asyncio.sleep(0.1)
        raise AssertionError("the failed run was never scheduled for a retry")

    with tags(tag):
        restore = asyncio.create_task(put_the_skill_back_after_the_first_failure())
        state = await research_lead(return_state=True)
        await restore
    assert state.is_completed(), f"{state.name}: {state.message}"
    names = await state_names(state.state_details.flow_run_id)
    assert names.count("Running") == 2 and names.count("AwaitingRetry") == 1, names
    record = open_store(skill="research-lead").get("runs", str(state.state_details.flow_run_id))
    assert record is not None and record.data["status"] == "completed" and record.version == 1
    assert len([r for r in emulator.requests() if r.get("status") == 200]) == 1


async def claimed_parked_run(label: str):
    """A weekly-report run parked in the paused deferred queue and claimed (Pending) by a drainer."""
    skill = find_skill(get_settings().skills_dir, "weekly-report")
    run_id = await deferral.park_run(skill, {"week": f"{label}-{uuid4().hex[:6]}"}, Occurrence())
    async with get_client() as client:
        assert await claim_run(client, run_id) is not None
    return run_id


async def test_a_running_run_whose_process_died_before_its_first_heartbeat_is_crashed_and_resubmitted(deployed, emulator):
    """The zombie automation is armed by a first heartbeat; the soak found runs killed before theirs Running for good."""
    from prefect.states import Running

    await deferral.set_paused(True)
    try:
        run_id = await claimed_parked_run("silent")
        async with get_client() as client:
            await client.set_flow_run_state(run_id, Running())  # the drainer started it, then died: no heartbeat ever
        assert await recovery.crash_silent_running(["weekly-report"]) == [], "a run within the heartbeat window is alive"
        assert await recovery.crash_silent_running(["weekly-report"], window=timedelta(0)) == [str(run_id)]
        async with get_client() as client:
            assert (await client.read_flow_run(run_id)).state.type is StateType.CRASHED
        assert await recovery.resubmit_crashed(["weekly-report"]) == [], "a silence is believed only a while later"
        resubmitted = await recovery.resubmit_crashed(["weekly-report"], confirm=timedelta(0))  # that while, passed
        assert len(resubmitted) == 1 and resubmitted != [str(run_id)], resubmitted
    finally:
        await deferral.set_paused(False)
    finished = await wait_final(resubmitted[0])  # the session's process worker runs it from the resumed queue
    assert finished.state.is_completed(), finished.state_name
    assert f"resubmits:{run_id}" in finished.tags, finished.tags
    record = open_store().get("runs", str(run_id))  # under the occurrence's first run: a resubmission overwrites it
    assert record.data["run_id"] == resubmitted[0] and record.version == 1
    assert len(emulator.requests("anthropic")) == 1


async def test_a_run_claimed_by_a_drainer_that_died_before_starting_it_is_resubmitted_once_as_a_new_run_and_runs(deployed, emulator):
    await deferral.set_paused(True)
    try:
        run_id = await claimed_parked_run("pending")  # the drainer claims it, then dies here
        async with get_client() as client:
            parked = await client.read_flow_run(run_id)
            assert parked.state.type is StateType.PENDING
        assert await recovery.resubmit_stuck_pending(["weekly-report"]) == [], "a fresh claim is left to its claimant"
        resubmitted = await recovery.resubmit_stuck_pending(["weekly-report"], older_than=timedelta(0))
        assert len(resubmitted) == 1 and resubmitted != [str(run_id)], resubmitted
        assert await recovery.resubmit_stuck_pending(["weekly-report"], older_than=timedelta(0)) == [], "once"
    finally:
        await deferral.set_paused(False)
    new_id = resubmitted[0]
    finished = await wait_final(new_id)  # the session's process worker runs it from the resumed queue
    assert finished.state.is_completed(), finished.state_name
    assert f"resubmits:{run_id}" in finished.tags and f"occurrence:{parked.idempotency_key}" in finished.tags, finished.tags
    assert finished.work_queue_name == parked.work_queue_name, "it waits where the parked run waited"
    async with get_client() as client:
        old = await client.read_flow_run(run_id)
    assert old.state.type is StateType.CANCELLED and old.state.name == "Resubmitted" and new_id in old.state.message
    assert (await state_names(run_id)).count("Running") == 0, "the abandoned claim never ran"
    assert (await state_names(new_id)).count("Running") == 1
    assert open_store().get("runs", new_id) is None, "the occurrence's record lives under its first run"
    record = open_store().get("runs", str(run_id))
    assert record.data["run_id"] == new_id and record.version == 1
    assert len(emulator.requests("anthropic")) == 1


async def test_a_run_that_died_after_parking_its_occurrence_is_not_submitted_again_so_it_runs_once(deployed, emulator):
    """The 1,000-run soak: a drained run found Claude down again, parked its occurrence, and was killed before
    it recorded that; its resubmission and the run it parked both completed. The parked run carries it."""
    from prefect.states import Running

    await deferral.set_paused(True)
    try:
        run_id = await claimed_parked_run("reparked")
        async with get_client() as client:
            await client.set_flow_run_state(run_id, Running())  # the drainer started it ...
            dead = await client.read_flow_run(run_id)
        skill = find_skill(get_settings().skills_dir, "weekly-report")
        parked = await deferral.park_run(skill, dead.parameters["inputs"], type("Ctx", (), {"flow_run": dead})())  # ... it parked, then died
        assert await recovery.crash_silent_running(["weekly-report"], window=timedelta(0)) == [str(run_id)]
        assert await recovery.resubmit_crashed(["weekly-report"], confirm=timedelta(0)) == [], "the parked run carries the occurrence"
        assert await recovery.resubmit_crashed(["weekly-report"], confirm=timedelta(0)) == [], "and a later sweep agrees"
        async with get_client() as client:
            closed = await client.read_flow_run(run_id)
            assert closed.state.name == recovery.RESUBMITTED and parked in closed.state.message, closed.state.message
            assert await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"resubmits:{run_id}"]))) == []
    finally:
        await deferral.set_paused(False)
    finished = await wait_final(parked)  # the session's process worker runs it from the resumed queue
    assert finished.state.is_completed() and finished.state.name == "Completed", finished.state_name
    assert open_store().get("runs", parked).version == 1
    assert len([r for r in emulator.requests("anthropic") if r.get("status") == 200]) == 1, "answered once"


async def test_an_occurrence_whose_claimants_keep_dying_is_given_up_with_a_failed_record_not_left_pending(deployed, emulator):
    """The 1,000-run soak lost two runs: resubmitted once, claimed by a drainer killed in turn, left Pending."""
    await deferral.set_paused(True)
    try:
        first = await claimed_parked_run("given-up")
        run_id = first
        for _ in range(recovery.MAX_RESUBMISSIONS):
            [run_id] = await recovery.resubmit_stuck_pending(["weekly-report"], older_than=timedelta(0))
            async with get_client() as client:
                assert await claim_run(client, run_id) is not None  # claimed again, and that claimant dies too
        assert await recovery.resubmit_stuck_pending(["weekly-report"], older_than=timedelta(0)) == []
        async with get_client() as client:
            last = await client.read_flow_run(run_id)
    finally:
        await deferral.set_paused(False)
    assert last.state.type is StateType.CANCELLED and last.state.name == recovery.GIVEN_UP, last.state_name
    record = open_store().get("runs", str(first))  # the occurrence's record, under its first run
    assert record.data["status"] == "failed" and record.data["run_id"] == str(run_id), record.data
    assert f"given up after {recovery.MAX_RESUBMISSIONS + 1} runs" in record.data["reason"], record.data["reason"]
    assert emulator.requests("anthropic") == [], "none of them ever ran"
