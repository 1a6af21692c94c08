"""Drain the deferred queue in one process: claim parked runs and execute them concurrently.

A process worker starts a new Python process per run (seconds of start-up each on a small
machine); this drainer runs the same flow runs in-process, several at a time. It claims each run
the way a worker does, by proposing PENDING: the server accepts that for one claimant only, so a
run a worker already took is skipped here and each parked run executes exactly once either way.

The list of waiting runs is stale by the time a slot frees up (another drainer may have run one
to the end meanwhile), so `claim_runs` re-reads the runs it is about to claim, all in one request,
and claims only those still SCHEDULED; and skill flows persist their final state, so the server
itself refuses Pending for a Completed run. Slots are refilled as runs end, not batch by batch:
one slow run does not hold back the others; and claiming goes on beside the runs, so the loop does
not stop starting and reaping runs during a claim's round trips. The same loop serves any queue of the
pool, for as long as asked (the soak's executors serve `default` with it).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
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

log = logging.getLogger("aios.drainer")


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
    flows: Mapping[str, Flow],
    concurrency: int = 8,
    idle_polls: int | None = 1,
    poll_seconds: float = 0.5,
    queue: str | None = None,
) -> DrainStats:
    """Run parked runs until the (resumed) deferred queue stays empty for `idle_polls` polls.

    `flows` maps a flow's name to the flow to run (the skill flows): runs of any other flow are left
    to a process worker. Passed in, so this module does not depend on `flows/`. `queue` serves another
    queue of aios's pool the same way; `idle_polls=None` serves it for ever (a long-lived executor, such
    as the soak's on `default`): then a poll, a claim or a run that fails (the server restarting) is
    logged and the loop goes on, where a drain raises it.

    Claiming takes two round trips to a server that is busy with the runs themselves (~0.3 s each at
    5 runs/s), so it goes on beside the runs: slots that free meanwhile are claimed for by the next
    batch, not one after the other. No run is claimed before a slot is free for it: a claimed run
    starts at once, so a process that dies leaves in Pending only the runs it was starting.
    """
    settings = get_runtime().settings
    queue = queue or settings.deferred_queue
    names: dict[UUID, str] = {}  # flow id -> flow name
    others: set[UUID] = set()  # runs of flows not in `flows`: a process worker's
    stats = DrainStats()
    running: set[asyncio.Task] = set()
    ready: deque[FlowRun] = deque()  # claimed, started at the loop's next turn
    waiting: list[FlowRun] = []  # the last poll's list, not claimed yet (stale: claim_runs reads it again)

    def survive(exc: Exception, what: str) -> None:
        if idle_polls is not None:
            raise exc
        log.warning("%s (queue %s): %s: %s", what, queue, type(exc).__name__, exc)

    async def execute(flow: Flow, flow_run: FlowRun) -> None:
        try:
            state = await run_claimed(flow, flow_run)
        except Exception as exc:  # noqa: BLE001 - survive() raises it unless serving for ever
            survive(exc, f"run {flow_run.id}")
            state = None
        if state is not None and state.is_completed():
            stats.completed += 1
        else:
            stats.failed += 1

    async def waiting_runs(client) -> list[FlowRun]:
        """The queue's waiting runs of the flows in `flows`, oldest first."""
        responses = await client.get_scheduled_flow_runs_for_work_pool(
            settings.work_pool,
            work_queue_names=[queue],
            scheduled_before=datetime.now(UTC) + timedelta(seconds=1),
        )
        found = []
        for flow_run in (r.flow_run for r in responses if r.flow_run.id not in others):
            if flow_run.flow_id not in names:
                names[flow_run.flow_id] = (await client.read_flow(flow_run.flow_id)).name
            if names[flow_run.flow_id] in flows:
                found.append(flow_run)
            else:
                others.add(flow_run.id)
        return found

    async def take(client, want: int) -> list[FlowRun]:
        """Claim up to `want` runs of the last poll's list, polling the queue again once it is used up."""
        nonlocal waiting
        if not waiting:
            waiting = await waiting_runs(client)
        batch, waiting = waiting[:want], waiting[want:]
        return await claim_runs(client, [r.id for r in batch]) if batch else []

    # One Prefect client of each kind for every run of the drain: the engine otherwise builds an async client
    # per run and a sync one per result-storage lookup, each loading the CA bundle (20-100 ms of blocked loop).
    loop = asyncio.get_running_loop()
    # The model SDKs (anthropic: ~1.2 s of CPU) load in a thread while the first runs are claimed and set up
    # (mostly waiting on the server), not on this loop in the first run's call, where they stalled every run.
    preload = asyncio.create_task(asyncio.to_thread(get_runtime().providers.preload))
    idle, rest_until = 0, 0.0  # no poll before rest_until: the last one found nothing to take
    claiming: asyncio.Task | None = None
    with SyncClientContext.get_or_create():
        async with AsyncClientContext.get_or_create() as shared:
            client = shared.client
            try:
                while True:
                    while ready and len(running) < concurrency:
                        flow_run = ready.popleft()
                        stats.started += 1
                        running.add(asyncio.create_task(execute(flows[names[flow_run.flow_id]], flow_run)))
                    room = concurrency - len(running) - len(ready)
                    if claiming is None and room > 0 and (waiting or loop.time() >= rest_until):
                        claiming = asyncio.create_task(take(client, room))
                    if claiming is None and not running:  # resting after an empty poll, nothing to wait for
                        await asyncio.sleep(max(0.0, rest_until - loop.time()))
                        continue
                    pending = running | {claiming} if claiming else running
                    timeout = None if claiming or room <= 0 else max(0.0, rest_until - loop.time())
                    done, _ = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        if task is not claiming:
                            running.discard(task)
                            task.result()  # a bug in the drainer itself is raised, not swallowed
                            continue
                        claiming = None
                        try:
                            claimed = task.result()
                        except Exception as exc:  # noqa: BLE001 - survive() raises it unless serving for ever
                            survive(exc, "poll or claim")
                            claimed = []
                        ready.extend(claimed)
                        if claimed:
                            idle = 0
                        elif not waiting:  # the queue had nothing to take: poll again later, not in a spin
                            rest_until = loop.time() + poll_seconds
                            if not running and not ready:
                                idle += 1
                                if idle_polls is not None and idle >= idle_polls:
                                    return stats
                    if not running and not ready and claiming is None and idle == 0:
                        rest_until = 0.0  # the last run ended: whether the drain is over is one poll away
            finally:  # cancelled (a served queue is stopped so) or raising: nothing of this drain outlives it
                leftovers = [*running, *([claiming] if claiming else []), preload]
                for task in leftovers:
                    task.cancel()  # a run cancelled mid-way ends Crashed, and crash recovery submits it again
                await asyncio.gather(*leftovers, return_exceptions=True)
