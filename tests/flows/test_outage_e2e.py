"""The whole outage protocol on a real Prefect server (PostgreSQL) with a real process worker.

Claude goes down -> critical answers from OpenAI, defer is parked in the paused queue, drop is
dropped with a record, one alert. Claude comes back -> the status check resumes the queue, the
worker runs the parked run on Claude exactly once, one recovery alert.
"""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

from aios.outage import deferral
from aios.runs.record import RunStatus, SkillRun
from aios.state import open_store
from flows.skill_flow import build_skill_flow
from flows.status_check import status_check
from tests.helpers import wait_final

pytestmark = pytest.mark.e2e

CLAUDE_API = "Claude API (api.anthropic.com)"


async def run_flow(name: str):
    state = await build_skill_flow(name)(return_state=True)
    return state, SkillRun.model_validate(await state.result(raise_on_failure=False))


async def test_claude_outage_and_recovery_end_to_end(deployed, emulator, alert_inbox, worker_polls):
    from datetime import UTC, datetime

    started = datetime.now(UTC)
    # Claude goes down: the status page says so and the API answers 529.
    emulator.set_status("claude", components={CLAUDE_API: "major_outage"},
                        incidents=[{"name": "Elevated errors on the Claude API", "status": "investigating", "impact": "critical", "components": [CLAUDE_API]}])
    emulator.set_fault("anthropic", "overloaded")
    report = await status_check()
    assert report["claude_healthy"] is False and await deferral.is_paused()
    assert len(alert_inbox) == 1, alert_inbox

    _, critical = await run_flow("research-lead")
    assert critical.status is RunStatus.completed and critical.provider == "openai"

    deferred_state, deferred = await run_flow("weekly-report")
    assert deferred_state.name == "Deferred" and deferred.status is RunStatus.deferred
    assert not [a for a in deferred.attempts if a.provider == "openai"], "defer never runs on the secondary"
    parked = [str(r.id) for r in await deferral.parked_runs()]
    assert deferred.parked_run_id in parked

    dropped_state, dropped = await run_flow("daily-news")
    assert dropped_state.name == "Dropped"
    record = open_store().get("runs", dropped.run_id)
    assert record is not None and record.data["status"] == "dropped"

    await worker_polls(3)  # the worker looked at the pool three times: the paused queue must hold the parked run
    async with get_client() as client:
        assert (await client.read_flow_run(deferred.parked_run_id)).state.is_scheduled()
    assert len(alert_inbox) == 1, "one alert for the outage, no storm"

    # Claude comes back: two healthy checks in a row (hysteresis) resume the queue.
    emulator.clear_status()
    emulator.clear_faults()
    first = await status_check()
    assert first["claude_healthy"] is False, "one healthy check is not enough"
    second = await status_check()
    assert second["claude_healthy"] is True and not await deferral.is_paused()
    assert len(alert_inbox) == 2 and "recovered" in alert_inbox[-1]["title"]

    finished = await wait_final(deferred.parked_run_id)
    assert finished.state.is_completed()
    record = open_store().get("runs", deferred.parked_run_id)
    assert record is not None and record.data["status"] == "completed"
    assert record.data["provider"] == "anthropic" and record.data["output"]

    # Nothing ran twice: exactly one run of the weekly-report deployment, and it completed.
    async with get_client() as client:
        runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["weekly-report"])))
    mine = [str(r.id) for r in runs if r.created >= started and r.parameters == {"inputs": deferred.inputs}]
    assert mine == [deferred.parked_run_id]


async def test_parking_the_same_occurrence_twice_queues_one_run(deployed, emulator):
    from prefect.context import FlowRunContext  # noqa: F401 - the key comes from the run context

    from aios.skills.loader import find_skill
    from aios.config.settings import get_settings

    skill = find_skill(get_settings().skills_dir, "weekly-report")

    class Ctx:  # the identity of one scheduled occurrence
        class flow_run:  # noqa: N801
            id = "11111111-1111-1111-1111-111111111111"
            deployment_id = "22222222-2222-2222-2222-222222222222"
            expected_start_time = None
            auto_scheduled = False
            tags: list[str] = []
            idempotency_key = None

    try:
        await deferral.set_paused(True)
        first = await deferral.park_run(skill, {"week": "W1"}, Ctx)
        second = await deferral.park_run(skill, {"week": "W1"}, Ctx)
        assert first == second
    finally:
        async with get_client() as client:
            await client.delete_flow_run(first)
        await deferral.set_paused(False)


async def test_opus_only_incident_moves_critical_skills_to_the_next_claude_model(deployed, emulator):
    emulator.set_status("claude", incidents=[{"name": "Elevated error rates on Claude Opus 5.5", "status": "identified", "impact": "major", "components": [CLAUDE_API]}])
    emulator.set_fault("anthropic", "error_500", model="claude-opus-5-5")
    report = await status_check()
    assert report["health"]["anthropic:claude-opus-5-5"] == "down"
    assert report["claude_healthy"] is True, "one model down is not Claude down"
    _, run = await run_flow("research-lead")
    assert (run.provider, run.model) == ("anthropic", "claude-sonnet-5-5")
    assert run.attempts[0].model == "claude-sonnet-5-5", "the down model is skipped, not tried"


async def test_parked_runs_survive_a_restart_of_the_server_and_the_worker(deployed, emulator):
    from uuid import uuid4

    from aios.config.settings import get_settings
    from aios.skills.loader import find_skill

    class Occurrence:
        flow_run = type("FR", (), {"id": uuid4(), "deployment_id": None, "expected_start_time": None, "auto_scheduled": False, "tags": [], "idempotency_key": None})

    skill = find_skill(get_settings().skills_dir, "weekly-report")
    await deferral.set_paused(True)
    parked = await deferral.park_run(skill, {"week": "restart"}, Occurrence)
    deployed.stop_workers()
    deployed.restart_prefect()
    deployed.start_workers(1)
    assert parked in [str(r.id) for r in await deferral.parked_runs()], "still parked after the restart"
    await deferral.set_paused(False)
    finished = await wait_final(parked)
    assert finished.state.is_completed()
