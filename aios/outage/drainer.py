"""Drain the deferred queue in one process: claim parked runs and execute them concurrently.

A process worker starts a new Python process per run (seconds of start-up each on a small
machine); this drainer runs the same flow runs in-process, several at a time. It claims each run
the way a worker does, by proposing PENDING: the server accepts that for one claimant only, so a
run a worker already took is skipped here and each parked run executes exactly once either way.

The list of waiting runs is stale by the time a slot frees up (another drainer may have run one
to the end meanwhile), so `claim_run` re-reads the run and claims only one still SCHEDULED; and
skill flows persist their final state, so the server itself refuses Pending for a Completed run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from prefect import Flow
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.context import AsyncClientContext, SyncClientContext
from prefect.flow_engine import run_flow_async
from prefect.states import Pending
from pydantic import BaseModel

from aios.config.runtime import get_runtime


async def claim_run(client, flow_run_id) -> FlowRun | None:
    """Take a waiting run for this process, or None when it is no longer waiting or someone else took it."""
    current = await client.read_flow_run(flow_run_id)
    if current.state is None or current.state.type is not StateType.SCHEDULED:
        return None  # already claimed, running or finished: a stale entry of the waiting list
    claim = await client.set_flow_run_state(flow_run_id, Pending())
    if claim.status is not SetStateStatus.ACCEPT or claim.state is None:
        return None  # another worker or drainer got it first
    return current.model_copy(update={"state": claim.state})  # the engine reads the run again as it starts


class DrainStats(BaseModel):
    started: int = 0
    completed: int = 0
    failed: int = 0


async def drain_deferred(
    flows: Mapping[str, Flow], concurrency: int = 8, idle_polls: int = 1, poll_seconds: float = 0.5
) -> DrainStats:
    """Run parked runs until the (resumed) deferred queue stays empty for `idle_polls` polls.

    `flows` maps a flow's name to the flow to run (the skill flows): runs of any other flow are left
    to a process worker. Passed in, so this module does not depend on `flows/`.
    """
    settings = get_runtime().settings
    names: dict = {}
    stats = DrainStats()
    gate = asyncio.Semaphore(concurrency)

    async def execute(client, flow_run) -> None:
        async with gate:
            if flow_run.flow_id not in names:
                names[flow_run.flow_id] = (await client.read_flow(flow_run.flow_id)).name
            flow = flows.get(names[flow_run.flow_id])
            if flow is None:
                return  # not a skill flow: leave it to a process worker
            flow_run = await claim_run(client, flow_run.id)
            if flow_run is None:
                return
            stats.started += 1
            # Without its deployment here, Prefect does not start its suspension observer for the run (a thread
            # with its own event loop and a websocket, which blocks this loop while it connects and stops):
            # skill flows never suspend. The engine reads the run again, deployment and all, before the body runs.
            flow_run = flow_run.model_copy(update={"deployment_id": None})
            state = await run_flow_async(flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state")
            if state is not None and state.is_completed():
                stats.completed += 1
            else:
                stats.failed += 1

    # One Prefect client of each kind for every run of the drain: the engine otherwise builds an async client
    # per run and a sync one per result-storage lookup, each loading the CA bundle (20-100 ms of blocked loop).
    idle = 0
    with SyncClientContext.get_or_create():
        async with AsyncClientContext.get_or_create() as shared:
            client = shared.client
            while idle < idle_polls:
                responses = await client.get_scheduled_flow_runs_for_work_pool(
                    settings.work_pool,
                    work_queue_names=[settings.deferred_queue],
                    scheduled_before=datetime.now(UTC) + timedelta(seconds=1),
                )
                if not responses:
                    idle += 1
                    await asyncio.sleep(poll_seconds)
                    continue
                idle = 0
                await asyncio.gather(*(execute(client, r.flow_run) for r in responses))
    return stats
