"""Crash recovery: a skill run that Prefect marked Crashed (its process or worker died) is submitted again.

Why a sweep in the status-check flow rather than a second automation: the status check already runs
every minute next to the health decision, it can bound re-submissions by reading the run's own state
history (an automation action cannot count), and it needs no extra moving part to install. The run is
put back to Scheduled -- the same flow run, so the same parameters, idempotency key and run id: its
record is keyed by that id, and its paid answer comes back from the result cache. When Claude is down
the re-run is triaged like any run (critical fails over, defer is parked, drop is dropped).
"""

from __future__ import annotations

from collections.abc import Iterable

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
            result = await client.set_flow_run_state(run.id, Scheduled(name=RESUBMITTED))
            if result.status is SetStateStatus.ACCEPT:
                resubmitted.append(str(run.id))
    return resubmitted
