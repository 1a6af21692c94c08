"""Finished work is never paid for, or executed, twice: persisted answers, persisted final states, keyed records."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.states import Pending

from aios.config.bootstrap import result_storage
from aios.outage import deferral, recovery
from aios.outage.drainer import claim_run, drain_deferred
from aios.config.settings import get_settings
from aios.skills.loader import find_skill
from aios.state import open_store
from flows.skill_flow import skill_flows
from tests.helpers import wait_final

pytestmark = pytest.mark.e2e


class Occurrence:
    """Stands for one scheduled occurrence (its own idempotency key)."""

    def __init__(self) -> None:
        self.flow_run = type("FR", (), {"id": uuid4(), "deployment_id": None, "expected_start_time": None, "auto_scheduled": False, "tags": [], "idempotency_key": None})


async def running_count(client, run_id) -> list[str]:
    history = await client.read_flow_run_states(run_id)
    return [s.name for s in history if s.type is StateType.RUNNING]


async def test_two_drainers_racing_run_each_parked_run_once(deployed, emulator):
    skill = find_skill(get_settings().skills_dir, "weekly-report")
    await deferral.set_paused(True)
    ids = [await deferral.park_run(skill, {"week": f"race-{i}"}, Occurrence()) for i in range(6)]
    await deferral.set_paused(False)
    flows = skill_flows()
    first, second = await asyncio.gather(
        drain_deferred(flows, concurrency=2, idle_polls=3, poll_seconds=0.2),
        drain_deferred(flows, concurrency=2, idle_polls=3, poll_seconds=0.2),
    )
    runs = [await wait_final(i) for i in ids]
    assert all(r.state.is_completed() for r in runs), [r.state_name for r in runs]
    async with get_client() as client:
        for run_id in ids:
            assert len(await running_count(client, run_id)) == 1, [s.name for s in await client.read_flow_run_states(run_id)]
    for run_id in ids:
        assert open_store().get("runs", run_id).version == 1, "one record write per parked run"
    assert first.started + second.started <= 6


async def test_a_finished_parked_run_cannot_be_claimed_again(deployed, emulator):
    """The soak's double execution: a stale claimant proposes Pending for a run already Completed."""
    skill = find_skill(get_settings().skills_dir, "weekly-report")
    await deferral.set_paused(True)
    run_id = await deferral.park_run(skill, {"week": "stale-claim"}, Occurrence())
    await deferral.set_paused(False)
    await drain_deferred(skill_flows(), concurrency=1, idle_polls=2, poll_seconds=0.2)
    assert (await wait_final(run_id)).state.is_completed()
    async with get_client() as client:
        assert await claim_run(client, run_id) is None, "a finished run is not waiting"
        stale = await client.set_flow_run_state(run_id, Pending())  # what the old drainer did
        assert stale.status is not SetStateStatus.ACCEPT, "the persisted final state locks a finished run"
        assert len(await running_count(client, run_id)) == 1
    assert len(emulator.requests("anthropic")) == 1


def the_worker(deployed):
    """The session's one process worker (its Popen): the process a resubmitted run must not kill."""
    workers = [p for p in deployed.processes if p.name.startswith("worker")]
    assert len(workers) == 1, [p.name for p in workers]
    return workers[0]


async def test_a_run_killed_after_its_answer_was_persisted_is_resubmitted_to_the_same_worker_which_completes_it_without_paying_again(
    deployed, emulator, monkeypatch, worker_polls
):
    """SIGKILL the flow's process while its run record is being written (the Airtable emulator holds the
    write); the sweep submits the crashed run again as a new run, the same process worker that reported
    the crash runs it and stays alive, the answer is the one paid for, and the occurrence has one record."""
    from aios.config.runtime import reset_runtime
    from aios.config.settings import reload_settings
    from aios.state import clear_store_cache

    airtable = f"{deployed.emulator_url}/airtable"
    base = "app" + uuid4().hex[:14]
    httpx.put(f"{airtable}/_control/bases/{base}", json={"tables": []}, timeout=10).raise_for_status()
    env = {
        "AIOS_STATE_SKILL_BACKENDS": '{"weekly-report": "airtable"}',
        "AIOS_STATE_AIRTABLE_BASE_ID": base,
        "AIOS_STATE_AIRTABLE_TOKEN": "emulator-token",
        "AIOS_STATE_AIRTABLE_API_URL": airtable,
        "AIOS_STATE_HTTP_TIMEOUT": "300",
    }
    worker = the_worker(deployed)
    storage = result_storage(Path(deployed.project))  # every process of the stack and this one share it
    cached_before = set(storage.glob("aios-answer-*"))
    emulator.set_fault("anthropic", "slow", delay=3.0, times=1)  # time to hold the record write before it comes
    async with get_client() as client:
        deployment = await client.read_deployment_by_name("weekly-report/weekly-report")
        run = await client.create_flow_run_from_deployment(
            deployment.id, parameters={"inputs": {"week": f"durable-{uuid4().hex[:6]}"}}, job_variables={"env": env}
        )
        deadline = time.monotonic() + 120
        while not emulator.requests("anthropic") and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert emulator.requests("anthropic"), "the worker never asked Claude"
        httpx.put(f"{airtable}/_control/faults", json={"mode": "slow", "delay": 300, "times": 1}, timeout=10).raise_for_status()
        while not (set(storage.glob("aios-answer-*")) - cached_before) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert set(storage.glob("aios-answer-*")) - cached_before, "the answer was never persisted"
        while time.monotonic() < deadline:  # the record write reached Airtable, which now holds it
            if httpx.get(f"{airtable}/_control/faults", timeout=10).json().get("times") == 0:
                break
            await asyncio.sleep(0.2)
        fr = await client.read_flow_run(run.id)
        assert fr.state.type is StateType.RUNNING and fr.infrastructure_pid, fr.state_name
        os.kill(int(fr.infrastructure_pid.rsplit(":", 1)[-1]), signal.SIGKILL)
        crashed = await wait_final(run.id)
        assert crashed.state.type is StateType.CRASHED, crashed.state_name
        httpx.delete(f"{airtable}/_control/faults", timeout=10)

        resubmitted = await recovery.resubmit_crashed(["weekly-report"])
        assert len(resubmitted) == 1 and resubmitted != [str(run.id)], resubmitted
        assert await recovery.resubmit_crashed(["weekly-report"]) == [], "submitted again exactly once"
        new_id = resubmitted[0]
        new = await client.read_flow_run(new_id)
        assert f"resubmits:{run.id}" in new.tags and f"occurrence:{run.id}" in new.tags, new.tags
        assert new.parameters == crashed.parameters and new.deployment_id == crashed.deployment_id
        old = await client.read_flow_run(run.id)
        assert old.state.name == "Resubmitted" and new_id in old.state.message, (old.state_name, old.state.message)

        finished = await wait_final(new_id)  # the session's process worker runs it: nothing in this process does
        assert finished.state.is_completed(), f"{finished.state_name}: {finished.state.message}"
        assert finished.infrastructure_pid, "a process worker ran the resubmitted run"
        assert (await client.read_flow_run(run.id)).state.name == "Resubmitted", "the crashed run is not run again"
    await worker_polls(2)  # polls after the resubmitted run finished: the worker outlived it
    assert worker.proc.poll() is None, f"the worker (pid {worker.proc.pid}) exited with {worker.proc.returncode}"
    assert the_worker(deployed).proc.pid == worker.proc.pid, "the same worker process, not a restarted one"

    answered = [r for r in emulator.requests() if r.get("status") == 200]
    assert len(answered) == 1, f"the model was paid {len(answered)} times for one answer"
    for key, value in env.items():  # read the record where the runs wrote it
        monkeypatch.setenv(key, value)
    reload_settings()
    clear_store_cache()
    try:
        store = open_store(skill="weekly-report")
        records = [r for r in (store.get("runs", str(run.id)), store.get("runs", new_id)) if r is not None]
    finally:
        monkeypatch.undo()
        reload_settings()
        reset_runtime()
        clear_store_cache()
    assert len(records) == 1, "one record for the occurrence, under the crashed run or its resubmission"
    record = records[0]
    assert record.data["status"] == "completed"
    assert record.data["provider"] == "anthropic" and record.version == 1, "one write, of the answer paid for once"
