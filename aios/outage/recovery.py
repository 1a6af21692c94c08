"""Crash recovery: a skill run that Prefect marked Crashed (its process or worker died), or that a claimant
left in Pending (killed after claiming it, before starting it), is submitted again -- as a NEW flow run.

Why a new run rather than putting the same one back to Scheduled: the process worker that reported a
crash can still hold an anyio CapacityLimiter token for that flow run id, and when it polls the same id
again it asks for a second token and the whole worker process exits ("this borrower is already holding
one of this CapacityLimiter's tokens", Prefect 3.8.8 workers/base.py). A new id is nothing any worker has
seen, whatever its bookkeeping. The new run is created from the same deployment with the same
parameters, job variables, work queue and tags, plus `resubmits:<old id>` (one per run in its lineage),
`first-run:<id>` (the run the occurrence began with) and `occurrence:<...>`, the occurrence the crashed run
answered: flows/skill_flow.py keys the paid answer by that occurrence, looks for the record under every run
of the lineage and writes it under the first run's id, so nothing is paid or recorded twice -- even when
the new run could not see its predecessor's record (the store did not answer, or the record waits in a dead
host's write journal: the 1,000-run soak found one such occurrence recorded twice). Its idempotency key is derived from the crashed run's id, so however many sweeps see the
crash, one new run exists; the old run's state is renamed Resubmitted with a message naming the new run,
which also keeps later sweeps from looking at it again.

Why a sweep in the status-check flow rather than a second automation: the status check already runs
every minute next to the health decision, it can bound re-submissions by reading the run's lineage (an
automation action cannot count), and it needs no extra moving part to install. When Claude is down the
new run is triaged like any run (critical fails over, defer is parked, drop is dropped).

Why a run marked Crashed for its silence is submitted again only once it stayed silent: a missing
heartbeat is no proof of death. Heartbeats are events, and a run's events client holds the ones it
emits while the server is away and delivers them late, after it is back (measured: server away 71 s,
a live run's two held heartbeats reached the server ~15 s after it was back, with their original
times). In between, that run had no heartbeat on record for 90 s; the sweep, looking then, marked it
Crashed, the next sweep submitted it again, and the live run finished too (Prefect accepts Crashed ->
Completed): two Completed runs and two records for one occurrence -- most likely the soak's one
double execution (it ran a server restart; its histories were not kept then, the audit prints them now).
So a run the zombie automation or the sweep marked Crashed for missing heartbeats (their messages
start "no heartbeat") is submitted again only once a later look, at least a beat and a half after the
mark, again finds no heartbeat in the last three beats -- the late ones count -- and a live run, which
beats again within a beat of the server being back, is left to finish. A crash someone saw (the worker
saw the process exit, the engine crashed) is submitted at once.

Why a run also checks, right before it records its outcome, that it still holds its occurrence
(`superseded`): defence in depth. If a live run was declared dead anyway (its events client gave up,
a claimant woke up after its Pending claim was Cancelled), its successor does the occurrence's work,
so the old run stands down: no record, no story, state Cancelled "Superseded" naming the successor.
The occurrence is executed (recorded, Completed) once; it is paid once when the successor asks after
the old run's answer reached the result cache (keyed by the occurrence), twice when it asks while the
old run still waits for it. A run marked Crashed but not yet submitted again takes itself back to
Running first, so the next sweep leaves it alone. Only a run old enough to have been declared dead
(created 90 s ago or more, or the stuck-claim window when that is shorter) pays for these two reads;
while the API is away it records, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.states import Cancelled, Crashed, Running, Scheduled

log = logging.getLogger("aios.recovery")
MAX_RESUBMISSIONS = 2  # a run of an occurrence submitted twice already that dies again is given up, with a record
RESUBMITTED = "Resubmitted"  # the name of the final state of a run that was submitted again
GIVEN_UP = "Given up"  # the name of the final state of a run past MAX_RESUBMISSIONS (its record says failed)
RESUBMITS_TAG = "resubmits:"  # resubmits:<flow run id>, one per earlier run of the same occurrence
FIRST_RUN_TAG = "first-run:"  # first-run:<flow run id>, the run an occurrence began with (the server keeps no tag order)
OCCURRENCE_TAG = "occurrence:"  # occurrence:<idempotency key or first run id> the answer cache is keyed by
PARKED_BY_TAG = "parked-by:"  # parked-by:<flow run id>, on a run parked in the deferred queue by that run
STORY_TAGS = ("outcome:", "triage:", "answered-by:", "failover")  # the old run's outcome, not the new one's
SILENCE = "no heartbeat"  # how the zombie automation and the sweep begin the message of a Crashed they set
SUPERSEDED = "Superseded"  # the name of the final state of a run that found a successor doing its work
# The earliest a run can be declared dead after it was created: three of Prefect's shortest heartbeats (30 s)
# without one (the automation, the sweep, whatever this process's own beat); a stuck claim takes stuck_pending().
EARLIEST_DEATH = timedelta(seconds=3 * 30)


class Superseded(Exception):
    """This run was declared dead and submitted again while it ran: its successor records the occurrence."""


def _tag_value(tags: Iterable[str], prefix: str) -> str | None:
    """What the first tag starting with `prefix` says after it, or None."""
    return next((t.removeprefix(prefix) for t in tags if t.startswith(prefix)), None)


def carried_occurrence(tags: Iterable[str]) -> str | None:
    """The occurrence a resubmitted run answers, as its tags carry it; None for a first run."""
    return _tag_value(tags, OCCURRENCE_TAG)


def occurrence_of(flow_run: FlowRun) -> str:
    """The occurrence a flow run answers: the one its tags carry (a resubmission), else its idempotency
    key (a scheduled occurrence, a parked run, a submitted run), else the run itself."""
    return carried_occurrence(flow_run.tags) or flow_run.idempotency_key or str(flow_run.id)


def first_run_of(flow_run: FlowRun) -> str:
    """The run this run's occurrence began with: the one its tags name (a resubmission), else itself.
    The occurrence's record lives under its id (`SkillRun.record_key`)."""
    return _tag_value(flow_run.tags, FIRST_RUN_TAG) or str(flow_run.id)


def resubmitted_from(tags: Iterable[str]) -> list[str]:
    """The ids of the earlier runs of this occurrence (a run crashed, its resubmission crashed, ...)."""
    return [t.removeprefix(RESUBMITS_TAG) for t in tags if t.startswith(RESUBMITS_TAG)]


def lineage_of(flow_run: FlowRun) -> list[str]:
    """This run and every earlier run of its occurrence it resubmits: any of them may hold its record."""
    return [str(flow_run.id), *resubmitted_from(flow_run.tags)]


async def resubmit_lost(skill_names: Iterable[str]) -> list[str]:
    """Every skill run the sweep submitted again: crashed ones, and claimed ones never started; returns the new ids."""
    names = list(skill_names)
    await crash_silent_running(names)
    return await resubmit_crashed(names) + await resubmit_stuck_pending(names)


def zombie_window() -> timedelta | None:
    """How long a Running run may go without a heartbeat: three beats, as the zombie automation waits
    (deployments/automation.py); None when flow runs send no heartbeats."""
    from prefect.settings import get_current_settings

    seconds = get_current_settings().flows.heartbeat_frequency
    return timedelta(seconds=3 * max(seconds, 30)) if seconds else None


def confirm_window() -> timedelta:
    """How long after marking a run Crashed for missing heartbeats the sweep waits before it believes the
    mark: a beat and a half (a live run beats again within a beat of the server being back; the half
    covers late delivery). With no heartbeat setting here, the automation's default beat (180 s,
    deployments/apply.py) is assumed."""
    return (zombie_window() or timedelta(seconds=3 * 180)) / 2


def silenced(state: State | None) -> bool:
    """Whether a Crashed state was set for missing heartbeats (a suspicion) rather than a death someone saw."""
    return state is not None and (state.message or "").startswith(SILENCE)


def still_silent(crashed_at: datetime, now: datetime, confirm: timedelta, heard: bool) -> bool:
    """A run marked Crashed for its silence is dead for sure when, `confirm` or longer after the mark, it
    was not `heard` (no heartbeat on record in the last 2 x `confirm`: three beats, late arrivals included)."""
    return crashed_at <= now - confirm and not heard


async def crash_silent_running(skill_names: Iterable[str], window: timedelta | None = None) -> list[str]:
    """Mark Crashed each Running deployment run of a skill whose last heartbeat (or, with none, its start)
    is older than `window` (default: zombie_window()); returns their ids.

    The zombie automation is armed by a run's first heartbeat, and heartbeats leave the process in the
    background: a process killed before its first one reached the server leaves a run Running that the
    automation never watches (the soak found such runs Running for good). A server restart can also
    lose the automation's pending expectation. A later sweep resubmits the run once it stayed silent
    (resubmit_crashed): this mark is a suspicion, not a death certificate.
    """
    names = list(skill_names)
    window = window if window is not None else zombie_window()
    if not names or window is None:
        return []
    now = datetime.now(UTC)
    crashed: list[str] = []
    async with get_client() as client:
        for run in await _skill_runs_in(client, names, StateType.RUNNING):
            if run.deployment_id is None or run.state is None or run.state.timestamp > now - window:
                continue
            if await _heard_from(client, run.id, now - window, now):
                continue  # alive
            state = Crashed(message=f"{SILENCE} for {window.total_seconds():.0f} s: its process or worker died")
            result = await client.set_flow_run_state(run.id, state)
            if result.status is SetStateStatus.ACCEPT:
                crashed.append(str(run.id))
    return crashed


async def _heard_from(client: PrefectClient, run_id: UUID, since: datetime, until: datetime) -> bool:
    """Whether the server holds a heartbeat of this flow run that occurred in [since, until]."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter

    beats = await client.read_events(
        EventFilter(
            occurred=EventOccurredFilter(since=since, until=until),
            event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run_id}"]),
        ),
        limit=1,
    )
    return bool(beats.events)


async def _skill_runs_in(client: PrefectClient, names: list[str], state: StateType, name: str | None = None) -> list[FlowRun]:
    """The runs of these skills' flows whose state is of this type (and name), at most 200 per sweep."""
    return await client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=names)),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[state]), name=FlowRunFilterStateName(any_=[name]) if name else None
            )
        ),
        limit=200,
    )


async def resubmit_crashed(skill_names: Iterable[str], confirm: timedelta | None = None) -> list[str]:
    """Submit each crashed deployment run of a skill again as a new run, once per crash; returns the new ids.

    A run marked Crashed for missing heartbeats is submitted only when, `confirm` (default:
    confirm_window()) or longer after the mark, it has no heartbeat on record in the last 2 x `confirm`;
    one that beats is alive and left to finish.
    """
    names = list(skill_names)
    if not names:
        return []
    confirm = confirm if confirm is not None else confirm_window()
    resubmitted: list[str] = []
    async with get_client() as client:
        # a Crashed run already resubmitted is named Resubmitted
        for run in await _skill_runs_in(client, names, StateType.CRASHED, name="Crashed"):
            if run.deployment_id is None:
                continue  # an in-process run: its caller saw the crash; there is no deployment to submit it to
            if silenced(run.state):
                now = datetime.now(UTC)
                heard = await _heard_from(client, run.id, now - 2 * confirm, now)
                if not still_silent(run.state.timestamp, now, confirm, heard):
                    continue  # alive after all, or too early to tell
            if len(resubmitted_from(run.tags)) >= MAX_RESUBMISSIONS:
                await give_up(client, run, _crashed(GIVEN_UP, run.state))
                continue
            new_id = await submit_again(client, run, lambda state: _crashed(RESUBMITTED, state))
            if new_id:
                resubmitted.append(new_id)
    return resubmitted


def _crashed(name: str, state: State) -> State:
    """The closing state of a crashed run: still Crashed, renamed, saying how it died."""
    return Crashed(name=name, message=f"crashed: {state.message or 'its process died'}")


def stuck_pending() -> timedelta:
    """How long a claimed run may sit in Pending before it is submitted again (`AIOS_STUCK_PENDING_SECONDS`,
    default 5 minutes): a worker or drainer starts a claimed run within seconds, a loaded worker host
    starting a Python process per run within a minute or two; this is far past that."""
    from aios.config.settings import get_settings

    return timedelta(seconds=get_settings().stuck_pending_seconds)


async def resubmit_stuck_pending(skill_names: Iterable[str], older_than: timedelta | None = None) -> list[str]:
    """Submit each deployment run of a skill that sat in Pending longer than `older_than` (default:
    stuck_pending()) again; returns the new ids.

    Pending is the claim: a worker or drainer that died between claiming and starting a run leaves it
    there, and no heartbeat ever comes (heartbeats start with Running), so the zombie automation never
    sees it. The old run is Cancelled (named Resubmitted), so a claimant that wakes up late finds it
    finished. At most MAX_RESUBMISSIONS times per occurrence (crashes count too); then it is given up, with a
    failed record (the 1,000-run soak lost two runs a second killed claimant left in Pending, when the rule was
    "once, then leave it for a person").
    """
    names = list(skill_names)
    if not names:
        return []
    resubmitted: list[str] = []
    cutoff = datetime.now(UTC) - (older_than if older_than is not None else stuck_pending())
    async with get_client() as client:
        for run in await _skill_runs_in(client, names, StateType.PENDING):
            if run.deployment_id is None or run.state is None or run.state.timestamp > cutoff:
                continue
            if len(resubmitted_from(run.tags)) >= MAX_RESUBMISSIONS:
                await give_up(client, run, Cancelled(name=GIVEN_UP, message="left in Pending: its claimant never started it"))
                continue

            def cancelled(state: State) -> State:
                waited = (datetime.now(UTC) - state.timestamp).total_seconds()
                return Cancelled(name=RESUBMITTED, message=f"left in Pending for {waited:.0f} s: its claimant never started it")

            new_id = await submit_again(client, run, cancelled, still=run.state.id)
            if new_id:
                resubmitted.append(new_id)
    return resubmitted


async def give_up(client: PrefectClient, run: FlowRun, closing: State) -> None:
    """Close a run whose occurrence died MAX_RESUBMISSIONS + 1 times, leaving a failed record (unless one of
    its lineage recorded before dying), so it is accounted for and `aios state` shows it: never lost silently."""
    from aios.config.settings import get_settings
    from aios.errors import ConfigError
    from aios.runs import recorder
    from aios.runs.record import RunStatus, SkillRun
    from aios.skills.loader import find_skill
    from aios.state import StateError

    if run.state is None or await _unchanged(client, run, still=run.state.id) is None:
        return
    lineage = lineage_of(run)
    closing.message = f"{closing.message}; given up after {len(lineage)} runs of this occurrence died"
    try:
        skill = find_skill(get_settings().skills_dir, (await client.read_flow(run.flow_id)).name)
    except ConfigError as exc:  # the skill is gone: the state says why, there is nothing to record it as
        skill, closing.message = None, f"{closing.message}; no record: {exc}"
    try:
        recorded = skill is None or recorder.recorded_run(skill.name, lineage, strict=True) is not None
    except StateError:
        return  # the store cannot say whether one of them recorded: the next sweep looks again
    if not recorded:
        recorder.store_record(
            SkillRun(
                run_id=str(run.id), first_run_id=first_run_of(run), skill=skill.name, triage=skill.triage,
                status=RunStatus.failed, inputs=(run.parameters or {}).get("inputs") or {}, reason=closing.message,
            )
        )
    await client.set_flow_run_state(run.id, closing, force=True)
    log.warning("flow run %s: %s", run.id, closing.message)


async def submit_again(
    client: PrefectClient, run: FlowRun, final: Callable[[State], State], still: UUID | None = None
) -> str | None:
    """Create the run's successor (at most one, whatever races), then close the old run naming it.

    `final(current state)` is the old run's closing state; `still` is the state id the old run must still
    be in (None: still the type it was listed with). Returns the new run's id when this call closed the old run.
    """
    current = await _unchanged(client, run, still)
    if current is None or current.state.name == RESUBMITTED:
        return None
    if parked := await _tagged_run(client, f"{PARKED_BY_TAG}{run.id}"):  # the run it parked, if any
        # It died after it parked its occurrence (Claude was down) and before it recorded that: the parked run
        # carries the occurrence, and a successor beside it would answer it twice (the 1,000-run soak found four).
        closing = final(current.state)
        closing.message = f"{closing.message}; not submitted again: flow run {parked} it parked carries its occurrence"
        await client.set_flow_run_state(run.id, closing, force=True)
        return None
    occurrence = occurrence_of(run)
    kept = [t for t in run.tags if not t.startswith((*STORY_TAGS, OCCURRENCE_TAG))]
    new = await client.create_flow_run_from_deployment(
        run.deployment_id,
        parameters=run.parameters,
        job_variables=run.job_variables or None,
        work_queue_name=run.work_queue_name,
        tags=list(dict.fromkeys([*kept, f"{RESUBMITS_TAG}{run.id}", f"{FIRST_RUN_TAG}{first_run_of(run)}", f"{OCCURRENCE_TAG}{occurrence}"])),
        idempotency_key=f"aios-resubmit:{run.id}",  # one successor per run, however many sweeps see it
        state=Scheduled(message=f"resubmits flow run {run.id}"),
    )
    closing = final(current.state)
    closing.message = f"{closing.message}; resubmitted as flow run {new.id}"
    await client.set_flow_run_state(run.id, closing, force=True)  # Crashed -> Crashed is refused unless forced
    return str(new.id)


async def _unchanged(client: PrefectClient, run: FlowRun, still: UUID | None = None) -> FlowRun | None:
    """The run as the server has it now, if it is still in state `still` (None: still of the type it was
    listed with); None when it moved on. A sweep's list may be stale: a claimant or another sweep was here."""
    current = await client.read_flow_run(run.id)
    if current.state is None or (current.state.id != still if still else current.state.type is not run.state.type):
        return None
    return current


async def _tagged_run(client: PrefectClient, tag: str) -> str | None:
    """The id of a flow run carrying `tag` (a lineage tag such as resubmits:<id> or parked-by:<id>), if any."""
    found = await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])), limit=1)
    return str(found[0].id) if found else None


async def superseded(flow_run: FlowRun | None) -> str | None:
    """Why this running skill run must not record its occurrence's outcome -- another run was submitted
    in its place -- or None when it still holds its occurrence (see the module docstring).

    A run created less than EARLIEST_DEATH ago (or less than the stuck-claim window, when that is shorter)
    cannot have been declared dead yet, so it asks nothing.
    """
    import httpx

    youngest_dead = min(EARLIEST_DEATH, stuck_pending())
    if flow_run is None or (flow_run.created is not None and flow_run.created > datetime.now(UTC) - youngest_dead):
        return None
    try:
        async with get_client() as client:
            if why := await _successor(client, flow_run.id):
                return why
            current = await client.read_flow_run(flow_run.id)
            if current.state is None or current.state.type is not StateType.CRASHED:
                return None
            # Marked Crashed for its silence and not submitted again yet: it is alive, so it takes itself back.
            await client.set_flow_run_state(flow_run.id, Running(message="alive after all: it is recording its outcome"))
            return await _successor(client, flow_run.id)  # unless a sweep submitted it again meanwhile
    except httpx.HTTPError:  # the API is away: no sweep can run either, and the record matters more
        return None


async def _successor(client: PrefectClient, run_id: UUID) -> str | None:
    successor = await _tagged_run(client, f"{RESUBMITS_TAG}{run_id}")
    return f"declared dead while it ran; flow run {successor} was submitted in its place and records the occurrence" if successor else None
