"""Crash recovery: a skill run that Prefect marked Crashed (its process or worker died), or that a claimant
left in Pending (killed after claiming it, before starting it), is submitted again.

Why a sweep in the status-check flow rather than a second automation: the status check already runs
every minute next to the health decision, it can bound re-submissions by reading the run's own state
history (an automation action cannot count), and it needs no extra moving part to install. The run is
put back to Scheduled -- the same flow run, so the same parameters, idempotency key and run id: its
record is keyed by that id, and its paid answer comes back from the result cache. When Claude is down
the re-run is triaged like any run (critical fails over, defer is parked, drop is dropped).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.states import Scheduled

MAX_RESUBMISSIONS = 2  # a run that crashes a third time is left Crashed, for a person to look at
RESUBMITTED = "Resubmitted"
STUCK_PENDING = timedelta(minutes=5)  # a worker or drainer starts a claimed run within seconds; this is far past that
FROM_PENDING = "left in Pending"  # the message of a Resubmitted state that came from Pending
# A resubmitted run is due this long after the sweep. Due at once, the process worker that reported the
# crash may poll it before it releases that run's concurrency slot, and then dies on anyio's "this borrower
# is already holding one of this CapacityLimiter's tokens" (Prefect 3.8.8 workers/base.py), leaving every
# later run unpicked.
RESUBMIT_DELAY = timedelta(seconds=10)


def resubmitted_state(message: str) -> Scheduled:
    return Scheduled(name=RESUBMITTED, message=message, scheduled_time=datetime.now(UTC) + RESUBMIT_DELAY)


async def resubmit_lost(skill_names: Iterable[str]) -> list[str]:
    """Every skill run the sweep puts back to Scheduled: crashed ones, and claimed ones never started."""
    names = list(skill_names)
    return await resubmit_crashed(names) + await resubmit_stuck_pending(names)


async def resubmit_crashed(skill_names: Iterable[str]) -> list[str]:
    """Put each crashed deployment run of a skill back to Scheduled, once per crash; returns their ids."""
    names = list(skill_names)
    if not names:
        return []
    resubmitted: list[str] = []
    async with get_client() as client:
        crashed = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=names)),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED]))),
            limit=200,
        )
        for run in crashed:
            if run.deployment_id is None:
                continue  # an in-process run: its caller saw the crash; Prefect cannot reschedule it
            history = await client.read_flow_run_states(run.id)
            if sum(1 for s in history if s.type is StateType.CRASHED) > MAX_RESUBMISSIONS:
                continue
            current = await client.read_flow_run(run.id)  # the list may be stale: another sweep was here
            if current.state is None or current.state.type is not StateType.CRASHED:
                continue
            result = await client.set_flow_run_state(run.id, resubmitted_state(f"crashed: {current.state.message or 'its process died'}"))
            if result.status is SetStateStatus.ACCEPT:
                resubmitted.append(str(run.id))
    return resubmitted


async def resubmit_stuck_pending(skill_names: Iterable[str], older_than: timedelta = STUCK_PENDING) -> list[str]:
    """Put each deployment run of a skill that sat in Pending longer than `older_than` back to Scheduled, once.

    Pending is the claim: a worker or drainer that died between claiming and starting a run leaves it
    there, and no heartbeat ever comes (heartbeats start with Running), so the zombie automation never
    sees it. Once only: a run stuck a second time is left Pending, for a person to look at.
    """
    names = list(skill_names)
    if not names:
        return []
    resubmitted: list[str] = []
    cutoff = datetime.now(UTC) - older_than
    async with get_client() as client:
        pending = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=names)),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING]))),
            limit=200,
        )
        for run in pending:
            if run.deployment_id is None or run.state is None or run.state.timestamp > cutoff:
                continue
            history = await client.read_flow_run_states(run.id)
            if any(s.name == RESUBMITTED and (s.message or "").startswith(FROM_PENDING) for s in history):
                continue
            current = await client.read_flow_run(run.id)  # still the same Pending: nobody started it meanwhile
            if current.state is None or current.state.id != run.state.id:
                continue
            waited = (datetime.now(UTC) - current.state.timestamp).total_seconds()
            result = await client.set_flow_run_state(
                run.id, resubmitted_state(f"{FROM_PENDING} for {waited:.0f} s: its claimant never started it")
            )
            if result.status is SetStateStatus.ACCEPT:
                resubmitted.append(str(run.id))
    return resubmitted
