"""Skills that work on the user's records (a sheet, a base, the JSON store), step by step.

A scheduled run takes the pending records of the skill's `source` (at most `batch`), and works
through the skill's steps in waves: every record that needs step 1 runs it (at most
`concurrency` at once), then every record that needs step 2, and so on. Each step is one call
of the shared `call-model` task (flows/skill_flow.py) with the step's own contract; its validated
output is checkpointed in the state store (`record_progress`) and marked in the user's record
(`step_<name>` = done) before the next step starts. A later attempt -- on the fallback model in
the same run, on Claude after a deferral, or in the next scheduled run -- resumes at the first
unfinished step and never repeats a finished one.

Writes to the user's record carry `expected_version` and are made only if the record is as this
run last saw it; a record a person edited meanwhile is left alone and the run records a conflict.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from prefect import Flow, flow
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectNotFound
from prefect.states import Completed, Failed, State

from aios.core.health import HealthSnapshot
from aios.core.policy import FallbackPolicy
from aios.core.triage import RunDecision, plan_run
from aios.errors import AiosError
from aios.core.workflow import PROGRESS_TABLE, Progress, StepDone, WritePlan, read_input
from aios.runs.record import RUNS_TABLE, RecordOutcome, RecordResult, RecordsRun, RunStatus, SkillRun
from aios.config.entrypoints import attribute_name
from aios.config.runtime import get_runtime
from aios.skills.loader import Skill, find_skill, load_skills
from aios.state import BackendUnavailable, Record, StateError, Store, VersionConflict, open_store
from flows.skill_flow import ask_models, host_result_storage


class _Work:
    """One record in flight: what this run last saw of it, and its progress."""

    def __init__(self, record: Record, progress: Progress, progress_version: int) -> None:
        self.record = record
        self.progress = progress
        self.progress_version = progress_version
        self.result = RecordResult(key=record.key, outcome=RecordOutcome.failed)
        self.active = True

    def stop(self, outcome: RecordOutcome, reason: str) -> None:
        self.active, self.result.outcome, self.result.reason = False, outcome, reason


def step_skill(skill: Skill, step: str) -> Skill:
    """The skill as one step asks it: its instructions plus the step's, and the step's contract."""
    if not skill.steps:
        return skill
    spec = next(s for s in skill.steps if s.name == step)
    instructions = f"{skill.instructions}\n\n## This step: {step}\n\n{spec.instructions}"
    return skill.model_copy(update={"instructions": instructions, "output_schema": spec.output_schema})


def step_inputs(record: Record, progress: Progress, steps: tuple[str, ...]) -> dict[str, Any]:
    """What a step is given: the record's fields and the outputs of the steps before it."""
    earlier = {s: progress.steps[s].output for s in steps if s in progress.steps}
    return {"record": record.key, **record.data, **({"earlier_steps": earlier} if earlier else {})}


async def run_records(skill: Skill, record: str | None = None, limit: int | None = None) -> RecordsRun:
    """The body of a records skill's flow: pending records, steps in waves, answers written back."""
    from aios.outage import health_store

    plan = skill.metadata.write_plan()
    if plan is None:
        raise StateError(f"{skill.path}: metadata.source: the skill does not work on records")
    ctx = FlowRunContext.get()
    run = RecordsRun(
        run_id=str(ctx.flow_run.id) if ctx and ctx.flow_run else uuid4().hex,
        skill=skill.name,
        source=str(skill.metadata.source),
    )
    store = open_store(skill=skill.name)
    pending = _pending(store, skill, record, limit, run)
    if pending:
        health = await health_store.aread_snapshot()
        triage = plan_run(skill.triage, get_runtime().settings.skill_policy(skill), health)
        works = [_Work(r, *_load_progress(store, skill, r)) for r in pending]
        if triage.decision is RunDecision.run:
            await _waves(skill, plan, store, works, triage.policy, health, run)
        else:
            for w in works:
                await _set_aside(skill, w, triage.decision, triage.reason, ctx)
        run.records = [w.result for w in works]
    run.finished_at = datetime.now(UTC)
    _record(store, run)
    return run


def _pending(store: Store, skill: Skill, record: str | None, limit: int | None, run: RecordsRun) -> list[Record]:
    source = skill.metadata.source
    assert source is not None
    if record is not None:  # by hand, or a parked run: this record whatever its status
        found = store.get(source.table, record)
        if found is None:
            run.reason = f"table {source.table!r} has no record {record!r}"
        return [found] if found else []
    records = sorted(store.list(source.table, dict(source.where)), key=lambda r: r.key)
    return records[: limit or skill.metadata.batch]


def _load_progress(store: Store, skill: Skill, record: Record) -> tuple[Progress, int]:
    table = skill.metadata.source.table  # type: ignore[union-attr]
    stored = store.get(PROGRESS_TABLE, Progress.key_for(skill.name, table, record.key))
    if stored is None:
        return Progress(skill=skill.name, table=table, record=record.key), 0
    return Progress.model_validate(stored.data), stored.version


async def _waves(skill: Skill, plan: WritePlan, store: Store, works: list[_Work], policy: FallbackPolicy,
                 health: HealthSnapshot, run: RecordsRun) -> None:
    steps = skill.metadata.step_names
    gate = asyncio.Semaphore(skill.metadata.concurrency)

    async def one(w: _Work, step: str) -> None:
        async with gate:
            await _run_step(skill, plan, store, w, step, policy, health, run)

    for step in steps:
        todo = [w for w in works if w.active and w.progress.next_step(steps) == step]
        await asyncio.gather(*(one(w, step) for w in todo))
    for w in works:
        if w.active and w.progress.next_step(steps) is None:
            _write_answer(store, plan, w, w.progress.answer(steps))


async def _run_step(skill: Skill, plan: WritePlan, store: Store, w: _Work, step: str, policy: FallbackPolicy,
                    health: HealthSnapshot, run: RecordsRun) -> None:
    steps = skill.metadata.step_names
    asked = step_skill(skill, step)
    attempt = SkillRun(run_id=f"{run.run_id}:{w.record.key}:{step}", skill=skill.name, triage=skill.triage,
                       status=RunStatus.failed, inputs=step_inputs(w.record, w.progress, steps))
    after_failure = await ask_models(asked, attempt, policy, health)
    if not attempt.ok:
        if after_failure in (RunDecision.defer, RunDecision.drop):
            await _set_aside(skill, w, after_failure, attempt.reason, FlowRunContext.get())
        else:
            w.stop(RecordOutcome.failed, f"step {step}: {attempt.reason}")
        return
    assert attempt.output is not None and attempt.provider and attempt.model
    w.progress.steps[step] = StepDone(output=attempt.output, provider=attempt.provider, model=attempt.model, run_id=attempt.run_id)
    saved = store.upsert(PROGRESS_TABLE, Progress.key_for(skill.name, plan.table, w.record.key),
                         w.progress.model_dump(mode="json"), expected_version=w.progress_version)
    w.progress_version = saved.version
    w.result.steps_run.append(step)
    w.result.answered_by[step] = f"{attempt.provider}:{attempt.model}"
    if skill.steps:  # the user sees progress in their own sheet or base
        _write_record(store, plan, w, plan.step_marked(w.record.data, step))


def _write_answer(store: Store, plan: WritePlan, w: _Work, answer: dict[str, Any]) -> None:
    if _write_record(store, plan, w, plan.answered(w.record.data, answer)):
        w.stop(RecordOutcome.written, "")


def _write_record(store: Store, plan: WritePlan, w: _Work, data: dict[str, Any]) -> bool:
    """Write the record only if it is as this run last saw it; else record a conflict and stop."""
    table, key = plan.table, w.record.key
    try:
        current = store.get(table, key)
    except BackendUnavailable:
        current = w.record  # down: the journal checks expected_version when it replays
    if current is None or current.version != w.record.version or current.data != w.record.data:
        w.stop(RecordOutcome.conflict, f"{table}/{key} was changed by someone else during the run; left as they wrote it")
        return False
    try:
        w.record = store.upsert(table, key, data, expected_version=w.record.version)
    except VersionConflict as exc:
        w.stop(RecordOutcome.conflict, str(exc))
        return False
    return True


async def _set_aside(skill: Skill, w: _Work, decision: RunDecision, reason: str, ctx: FlowRunContext | None) -> None:
    """Defer: one parked run for this record. Drop: say so. Its progress is kept either way."""
    if decision is RunDecision.drop:
        w.stop(RecordOutcome.dropped, reason)
        return
    try:
        w.result.parked_run_id = await park_record(skill, w.record.key, ctx)
        w.stop(RecordOutcome.deferred, reason)
    except AiosError as exc:  # ParkError: never lost silently
        w.stop(RecordOutcome.failed, str(exc))


async def park_record(skill: Skill, key: str, ctx: FlowRunContext | None) -> str:
    """A run of the skill's deployment for this one record, in the paused `deferred` queue.

    One parked run per record: a record that already waits there is not parked again (a second
    scheduled run during the same outage reuses it), and a retried run parks the same run again
    (idempotency key per occurrence and record), not a second one.
    """
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType

    from aios.outage.deferral import ParkError, deployment_name, idempotency_key

    settings = get_runtime().settings
    occurrence = idempotency_key(skill.name, ctx)
    tags = ["aios-deferred", f"record:{key}"]
    async with get_client() as client:
        try:
            deployment = await client.read_deployment_by_name(deployment_name(skill.name))
        except ObjectNotFound:
            raise ParkError(f"cannot park {skill.name} record {key}: deployment {deployment_name(skill.name)} not found (run `aios deploy`)") from None
        waiting = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=tags),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING])),
            ),
            limit=1,
        )
        if waiting:
            return str(waiting[0].id)
        parked = await client.create_flow_run_from_deployment(
            deployment.id,
            parameters={"record": key},
            idempotency_key=f"{occurrence}:record:{key}" if occurrence else None,
            work_queue_name=settings.deferred_queue,
            tags=tags,
        )
    return str(parked.id)


def read_records(skill: Skill, inputs: dict[str, Any], store: Store | None = None) -> dict[str, Any]:
    """A skill that `reads` records gets them, from the store, as its input named after the table.

    The store's records replace the sample ones in `inputs.json`; none found is an empty list, so a
    report never summarizes sample data as if it were the user's.
    """
    reads = skill.metadata.reads
    if reads is None:
        return inputs
    found = (store or open_store(skill=skill.name)).list(reads.table, dict(reads.where))
    return {**inputs, reads.table: read_input((r.key, r.updated_at, r.data) for r in found)}


def _record(store: Store, run: RecordsRun) -> None:
    try:
        store.upsert(RUNS_TABLE, run.run_id, {"kind": "records", **run.model_dump(mode="json", exclude_none=True)})
    except StateError:
        pass  # the per-record outcomes are in the flow's result and in the user's own records


def final_state(run: RecordsRun) -> State:
    counts = {o.value: len(run.keys(o)) for o in RecordOutcome if run.keys(o)}
    summary = ", ".join(f"{n} {o}" for o, n in counts.items()) or (run.reason or "nothing pending")
    data = run.model_dump(mode="json")
    return Completed(data=data, message=summary) if run.ok else Failed(data=data, message=summary)


def build_records_flow(name: str) -> Flow:
    """The flow of a skill that works on records; named after the skill, like its plain flow."""

    @flow(name=name, persist_result=False, result_storage=host_result_storage(), validate_parameters=False, log_prints=True)
    async def records_flow(record: str | None = None, limit: int | None = None) -> State:
        from aios.outage.health_store import fleet_problem

        if problem := fleet_problem(get_runtime().settings):  # `aios doctor`'s reason, before any model call
            return Failed(message=problem)
        skill = find_skill(get_runtime().settings.skills_dir, name)
        return final_state(await run_records(skill, record=record, limit=limit))

    records_flow.__doc__ = f"Run `{name}` on its pending records, step by step, resuming where each left off."
    return records_flow


# One flow per records skill, for deployment entrypoints (`flows/records.py:research_lead`).
globals().update(
    {attribute_name(s.name): build_records_flow(s.name) for s in load_skills(get_runtime().settings.skills_dir) if s.metadata.source}
)
