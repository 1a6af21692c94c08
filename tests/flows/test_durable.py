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

from aios.outage import deferral, recovery
from aios.outage.drainer import claim_run, drain_deferred
from aios.settings import get_settings
from aios.skills import find_skill
from aios.state import open_store
from flows.skill import skill_flows

pytestmark = pytest.mark.e2e


class Occurrence:
    """Stands for one scheduled occurrence (its own idempotency key)."""

    def __init__(self) -> None:
        self.flow_run = type("FR", (), {"id": uuid4(), "deployment_id": None, "expected_start_time": None, "auto_scheduled": False})


async def wait_final(flow_run_id, timeout: float = 120):
    async with get_client() as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fr = await client.read_flow_run(flow_run_id)
            if fr.state and fr.state.is_final():
                return fr
            await asyncio.sleep(0.5)
    raise AssertionError(f"run {flow_run_id} is still {fr.state_name} after {timeout} s")


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
