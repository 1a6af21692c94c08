"""Drain the deferred queue in one process: claim parked runs and execute them concurrently.

A process worker starts a new Python process per run (seconds of start-up each on a small
machine); this drainer runs the same flow runs in-process, several at a time. It claims each run
the way a worker does, by proposing PENDING: the server accepts that for one claimant only, so a
run a worker already took is skipped here and each parked run executes exactly once either way.

The list of waiting runs is stale by the time a slot frees up (another drainer may have run one
to the end meanwhile), so `claim_runs` re-reads the runs it is about to claim, all in one request,
and claims only those still SCHEDULED; and skill flows persist their final state, so the server
itself refuses Pending for a Completed run. Slots are refilled as runs end, not batch by batch:
one slow run does not hold back the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prefect import Flow
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.context import AsyncClientContext, SyncClientContext
from prefect.flow_engine import run_flow_async
from prefect.states import Pending
from pydantic import BaseModel

from aios.config.runtime import get_runtime


async def claim_runs(client, flow_run_ids: Sequence[UUID]) -> list[FlowRun]:
    """Take the runs among `flow_run_ids` that are still waiting: one read for all, then one PENDING proposal each.

    A run no longer SCHEDULED (claimed, running or finished since the waiting list was read) is
    left alone; a run someone else claims between the read and the proposal is refused by the server.
    """
    if not flow_run_ids:
        return []
    waiting = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=list(flow_run_ids)),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
        ),
        limit=len(flow_run_ids),
    )
    claims = await asyncio.gather(*(client.set_flow_run_state(run.id, Pending()) for run in waiting))
    return [
        run.model_copy(update={"state": claim.state})  # the engine reads the run again as it starts
        for run, claim in zip(waiting, claims)
        if claim.status is SetStateStatus.ACCEPT and claim.state is not None
    ]


async def claim_run(client, flow_run_id: UUID) -> FlowRun | None:
    """Take one waiting run for this process, or None when it is no longer waiting or someone else took it."""
    claimed = await claim_runs(client, [flow_run_id])
    return claimed[0] if claimed else None


async def run_claimed(flow: Flow, flow_run: FlowRun) -> State | None:
    """Run a claimed run in this process, to its final state.

    Without its deployment here, Prefect does not start its suspension observer for the run (a thread
    with its own event loop and a websocket, which blocks this loop while it connects and stops):
    skill flows never suspend. The engine reads the run again, deployment and all, before the body runs.
    """
    flow_run = flow_run.model_copy(update={"deployment_id": None})
    return await run_flow_async(flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state")


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
    names: dict[UUID, str] = {}  # flow id -> flow name
    others: set[UUID] = set()  # runs of flows not in `flows`: a process worker's
    stats = DrainStats()
    running: set[asyncio.Task] = set()

    async def execute(flow: Flow, flow_run: FlowRun) -> None:
        state = await run_claimed(flow, flow_run)
        if state is not None and state.is_completed():
            stats.completed += 1
        else:
            stats.failed += 1

    async def waiting_runs(client) -> list[FlowRun]:
        """The deferred queue's waiting runs of the flows in `flows`, oldest first."""
        responses = await client.get_scheduled_flow_runs_for_work_pool(
            settings.work_pool,
            work_queue_names=[settings.deferred_queue],
            scheduled_before=datetime.now(UTC) + timedelta(seconds=1),
        )
        waiting = []
        for flow_run in (r.flow_run for r in responses if r.flow_run.id not in others):
            if flow_run.flow_id not in names:
                names[flow_run.flow_id] = (await client.read_flow(flow_run.flow_id)).name
            if names[flow_run.flow_id] in flows:
                waiting.append(flow_run)
            else:
                others.add(flow_run.id)
        return waiting

    async def slot_frees() -> None:
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        running.difference_update(done)
        for task in done:
            task.result()  # a bug in the drainer itself is raised, not swallowed

    # One Prefect client of each kind for every run of the drain: the engine otherwise builds an async client
    # per run and a sync one per result-storage lookup, each loading the CA bundle (20-100 ms of blocked loop).
    idle = 0
    with SyncClientContext.get_or_create():
        async with AsyncClientContext.get_or_create() as shared:
            client = shared.client
            while True:
                waiting = await waiting_runs(client)
                if not waiting:
                    if running:  # what is still running may park nothing new, but poll again once a slot frees
                        await slot_frees()
                        continue
                    idle += 1
                    if idle >= idle_polls:
                        break
                    await asyncio.sleep(poll_seconds)
                    continue
                idle = 0
                started = 0
                while waiting:
                    if len(running) >= concurrency:
                        await slot_frees()
                    free = concurrency - len(running)
                    batch, waiting = waiting[:free], waiting[free:]
                    for flow_run in await claim_runs(client, [r.id for r in batch]):
                        stats.started += 1
                        started += 1
                        flow = flows[names[flow_run.flow_id]]
                        running.add(asyncio.create_task(execute(flow, flow_run)))
                if not started:  # all taken by others, or refused for now: do not spin
                    await (slot_frees() if running else asyncio.sleep(poll_seconds))
    return stats
