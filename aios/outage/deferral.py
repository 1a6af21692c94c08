"""The deferred queue: parked runs wait in the paused work queue `deferred` of the pool `aios`.

A paused queue keeps its runs SCHEDULED (shown as Late) and a worker picks them up once the
queue is resumed, so runs parked before a server or worker restart survive it.
"""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkQueueFilter,
    WorkQueueFilterName,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.states import Scheduled

from aios.errors import AiosError
from aios.outage import story
from aios.config.runtime import get_runtime
from aios.skills.loader import Skill


class ParkError(AiosError):
    """A run that should wait could not be parked (so it is recorded as failed, never lost silently)."""


def deployment_name(skill: str) -> str:
    return f"{skill}/{skill}"


def idempotency_key(skill: str, ctx: FlowRunContext | None) -> str | None:
    """One parked run per occurrence, however often it is retried or submitted again: a run resubmitted
    after its predecessor parked and then crashed (or was declared dead) finds that parked run instead of
    parking a second one that would answer the occurrence twice (aios/outage/recovery.py)."""
    from aios.outage.recovery import occurrence_of

    if ctx is None or ctx.flow_run is None:
        return None
    return f"aios-defer:{skill}:{occurrence_of(ctx.flow_run)}"


async def park_run(skill: Skill, inputs: dict[str, Any], ctx: FlowRunContext | None, reason: str = "") -> str:
    """Create a new run of the skill's deployment, same parameters, straight into the deferred queue.

    The parked run shows as Late while the queue is paused, so its name, tags and state message say
    what it waits for and which run parked it; a Markdown artifact on each run links to the other.
    """
    from aios.outage.recovery import PARKED_BY_TAG

    settings = get_runtime().settings
    flow_run = ctx.flow_run if ctx is not None else None
    parent = flow_run if isinstance(flow_run, FlowRun) else None  # a real run to link (not a bare occurrence)
    async with get_client() as client:
        try:
            deployment = await client.read_deployment_by_name(deployment_name(skill.name))
        except ObjectNotFound:
            raise ParkError(
                f"cannot park {skill.name}: deployment {deployment_name(skill.name)} not found (run `aios deploy`)"
            ) from None
        waits = f"waiting for Claude: parked by run {parent.name}" if parent else "waiting for Claude"
        try:
            flow_run = await client.create_flow_run_from_deployment(
                deployment.id,
                parameters={"inputs": inputs},
                idempotency_key=idempotency_key(skill.name, ctx),
                work_queue_name=settings.deferred_queue,
                name=f"{skill.name} · parked, waits for Claude",
                tags=["aios-deferred", story.WAITING_TAG] + ([f"{PARKED_BY_TAG}{parent.id}"] if parent else []),
                state=Scheduled(message=f"{waits} (queue '{settings.deferred_queue}' is paused until Claude is healthy)"),
            )
        except PrefectHTTPStatusError as exc:  # e.g. inputs the deployment's schema refuses: a record, not a crash
            detail = exc.response.json().get("detail", "") if exc.response.headers.get("content-type", "").startswith("application/json") else ""
            raise ParkError(
                f"cannot park {skill.name}: the Prefect API refused the parked run ({exc.response.status_code}"
                + (f": {detail}" if detail else "") + ")"
            ) from None
        if parent is not None:
            await link_runs(client, parent, flow_run, settings.deferred_queue, reason)
    return str(flow_run.id)


async def link_runs(client: Any, deferred: FlowRun, parked: FlowRun, queue: str, reason: str) -> None:
    """A Markdown artifact on each run with a link to the other (UI pages /runs/flow-run/<id>)."""
    why = f" because {reason}" if reason else ""
    notes = {
        deferred.id: (
            f"Deferred: parked as run {parked.name}",
            f"**Deferred**{why}.\n\nParked as run {story.run_link(str(parked.id), parked.name)} in the paused "
            f"work queue `{queue}`; it runs on Claude once the status check finds Claude healthy.",
        ),
        parked.id: (
            f"Waiting for Claude: parked by run {deferred.name}",
            f"**Waiting for Claude.** Parked by run {story.run_link(str(deferred.id), deferred.name)}{why}.\n\n"
            f"It is Late because the work queue `{queue}` is paused until Claude is healthy; "
            "do not cancel it unless the work is no longer wanted.",
        ),
    }
    for run_id, (description, data) in notes.items():
        await client.create_artifact(ArtifactCreate(type="markdown", flow_run_id=run_id, description=description, data=data))


async def set_paused(paused: bool) -> bool:
    """Pause or resume the deferred queue; returns whether anything changed."""
    settings = get_runtime().settings
    async with get_client() as client:
        queue = await client.read_work_queue_by_name(settings.deferred_queue, work_pool_name=settings.work_pool)
        if queue.is_paused == paused:
            return False
        await client.update_work_queue(queue.id, is_paused=paused)
        return True


async def is_paused() -> bool:
    settings = get_runtime().settings
    async with get_client() as client:
        queue = await client.read_work_queue_by_name(settings.deferred_queue, work_pool_name=settings.work_pool)
        return bool(queue.is_paused)


async def parked_runs() -> list[FlowRun]:
    """Runs waiting in the deferred queue (scheduled or pending, not yet started)."""
    settings = get_runtime().settings
    runs: list[FlowRun] = []
    async with get_client() as client:
        while True:
            page = await client.read_flow_runs(
                work_queue_filter=WorkQueueFilter(name=WorkQueueFilterName(any_=[settings.deferred_queue])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING]))
                ),
                limit=200,  # the server's page limit
                offset=len(runs),
            )
            runs += page
            if len(page) < 200:
                return runs
