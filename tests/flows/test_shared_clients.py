"""Skill flows called in-process share one pair of Prefect clients per process and event loop (aios/runs/clients.py)."""

from __future__ import annotations

import asyncio

import pytest
from prefect import flow
from prefect.context import FlowRunContext

from flows.skill_flow import SkillFlow

pytestmark = pytest.mark.e2e


def probe_flow(seen: list) -> SkillFlow:
    """A flow built like every skill flow, that notes the Prefect client its run was given."""

    async def probe() -> None:
        seen.append(FlowRunContext.get().client)

    return SkillFlow(fn=probe, name="probe-shared-clients", persist_result=False, validate_parameters=False)


async def test_in_process_runs_on_one_loop_reuse_the_first_runs_client(stack):
    seen: list = []
    probe = probe_flow(seen)
    assert (await probe(return_state=True)).is_completed()
    assert (await probe(return_state=True)).is_completed()
    assert seen[0] is seen[1], "the second run built a client of its own"
    assert not seen[0]._closed, "the shared client was closed after a run"


async def test_concurrent_runs_share_the_clients_and_each_finishes(stack):
    seen: list = []
    probe = probe_flow(seen)
    states = await asyncio.gather(*(probe(return_state=True) for _ in range(4)))
    assert all(s.is_completed() for s in states)
    assert len({id(c) for c in seen}) == 1


async def test_a_run_on_another_event_loop_gets_clients_of_its_own(stack):
    seen: list = []
    probe = probe_flow(seen)
    await probe()
    await asyncio.to_thread(asyncio.run, probe())  # run_skill() from sync code: a loop per call
    await asyncio.to_thread(asyncio.run, probe())
    assert seen[1] is not seen[0] and seen[2] is not seen[1], "a client bound to another loop was lent"


async def test_a_skill_flow_run_as_a_subflow_keeps_its_parents_client(stack):
    seen: list = []
    probe = probe_flow(seen)

    @flow(name="users-flow-with-a-probe")
    async def users_flow() -> None:
        seen.append(FlowRunContext.get().client)
        await probe()

    await users_flow()
    assert seen[0] is seen[1]
