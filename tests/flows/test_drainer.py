"""The in-process drainer runs parked runs exactly once, even racing a process worker for them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from uuid import uuid4

import pytest
from prefect.client.orchestration import get_client
from prefect.states import Pending

from aios.outage import deferral
from aios.outage.drainer import claim_runs, drain_deferred
from aios.config.settings import get_settings
from aios.skills.loader import find_skill
from aios.state import open_store
from flows.skill_flow import skill_flows

pytestmark = pytest.mark.e2e


class Occurrence:
    """Stands for one scheduled occurrence (its own idempotency key)."""

    def __init__(self) -> None:
        self.flow_run = type("FR", (), {"id": uuid4(), "deployment_id": None, "expected_start_time": None, "auto_scheduled": False, "tags": [], "idempotency_key": None})


async def test_drainer_and_worker_together_run_each_parked_run_once(deployed, emulator, worker_polls):
    skill = find_skill(get_settings().skills_dir, "weekly-report")
    await deferral.set_paused(True)
    ids = [await deferral.park_run(skill, {"week": f"drain-{i}"}, Occurrence()) for i in range(6)]
    await deferral.set_paused(False)  # the session's process worker races the drainer from here on
    stats = await drain_deferred(skill_flows(), concurrency=4, idle_polls=2)
    async with get_client() as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = [await client.read_flow_run(i) for i in ids]
            if all(r.state and r.state.is_final() for r in runs):
                break
            await asyncio.sleep(1)
    assert all(r.state.is_completed() for r in runs), [r.state_name for r in runs]
    await worker_polls(3)  # the worker saw the pool after every run finished: it must not start any again
    async with get_client() as client:
        for run_id in ids:
            history = await client.read_flow_run_states(run_id)
            running = [s for s in history if s.type.value == "RUNNING"]
            assert len(running) == 1, f"{run_id} ran {len(running)} times: {[s.name for s in history]}"
    store = open_store()
    for run_id in ids:
        record = store.get("runs", run_id)
        assert record is not None and record.data["status"] == "completed"
        assert record.version == 1, "one completed write per parked run: it ran once"
    assert stats.started >= 1, "the drainer took part"


async def test_a_drainer_serving_a_queue_for_ever_keeps_polling_once_it_is_empty_and_runs_what_comes_later(deployed, emulator):
    skill = find_skill(get_settings().skills_dir, "weekly-report")
    await deferral.set_paused(True)
    ids = [await deferral.park_run(skill, {"week": f"serve-{i}"}, Occurrence()) for i in range(2)]
    await deferral.set_paused(False)
    serving = asyncio.create_task(drain_deferred(skill_flows(), concurrency=2, idle_polls=None, poll_seconds=0.2))
    try:
        await until_final(ids)
        await asyncio.sleep(1.5)  # several empty polls: a drain would have returned after the first
        assert not serving.done(), "the loop stopped serving the queue"
        ids.append(await deferral.park_run(skill, {"week": "serve-later"}, Occurrence()))
        await until_final(ids[-1:])
        assert not serving.done()
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
    async with get_client() as client:
        for run_id in ids:
            history = await client.read_flow_run_states(run_id)
            assert [s.type.value for s in history].count("RUNNING") == 1, f"{run_id}: {[s.name for s in history]}"
            assert max(history, key=lambda s: s.timestamp).is_completed()


async def until_final(ids: list[str], timeout: float = 120) -> None:
    async with get_client() as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = [await client.read_flow_run(i) for i in ids]
            if all(r.state and r.state.is_final() for r in runs):
                return
            await asyncio.sleep(0.5)
    raise AssertionError(f"not final within {timeout:.0f} s: {ids}")



async def test_claiming_takes_each_still_waiting_run_once(deployed, emulator):
    skill = find_skill(get_settings().skills_dir, "weekly-report")
    await deferral.set_paused(True)  # no worker takes them meanwhile: this test is the only claimant
    ids = [await deferral.park_run(skill, {"week": f"claim-{i}"}, Occurrence()) for i in range(3)]
    try:
        async with get_client() as client:
            await client.set_flow_run_state(ids[0], Pending())  # another claimant took the first
            claimed = await claim_runs(client, ids)
            assert sorted(str(r.id) for r in claimed) == sorted(ids[1:]), "only the runs still waiting are taken"
            assert all(r.state.is_pending() for r in claimed)
            assert await claim_runs(client, ids) == [], "a taken run is not taken again"
    finally:
        async with get_client() as client:
            for run_id in ids:  # claimed but never run here: not left behind as Pending runs
                await client.delete_flow_run(run_id)
        await deferral.set_paused(False)
