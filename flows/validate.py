"""The `validate-skills` flow: every skill, N times, on every target, through the real model task.

Each run goes through `flows.skill_flow.call_model` (the task every skill run uses) with a one-target
fallback policy, so a target is judged exactly as a failover would use it: same prompt, same
contract validation, same re-ask. Triage is deliberately ignored (a `defer` skill is still checked
on the secondary). The comparison itself is pure and lives in `aios.validation.compare`.

Each cell ends up in the state store (`validations`, key `skill:provider:model`) for `aios doctor`,
and the whole matrix in the table artifact `cross-model-validation`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from prefect import flow
from prefect.artifacts import acreate_table_artifact
from prefect.context import FlowRunContext
from prefect.states import Completed, Failed, State

from aios.core.fallback import ChainResult, Outcome
from aios.core.policy import FallbackPolicy
from aios.errors import ConfigError
from aios.providers import ModelRequest
from aios.validation.compare import DEFAULT_TOLERANCE
from aios.validation.matrix import (
    ARTIFACT_KEY,
    VALIDATIONS_TABLE,
    Matrix,
    RunSample,
    build_cells,
    record_of,
    validation_key,
)
from aios.skills.prompt import skill_request
from aios.validation.plan import SkillPlan, plan_validation
from flows.skill_flow import NoAnswerRecord, call_model

log = logging.getLogger("aios.validate")


async def sample_once(request: ModelRequest, policy: FallbackPolicy, label: str) -> RunSample:
    """One run on a one-target policy, through the `call-model` task."""
    state = await call_model.with_options(task_run_name=label)(request, policy, return_state=True)
    result = await state.result(raise_on_failure=False)
    if isinstance(result, ChainResult):
        usage = result.answer.usage
        return RunSample(
            ok=True,
            output=result.answer.output,
            ms=round(sum(a.ms for a in result.attempts), 1),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        )
    if isinstance(result, NoAnswerRecord):
        failed = [a for a in result.attempts if a.outcome is not Outcome.ok and a.error_class is not None]
        return RunSample(
            ok=False,
            error_class=failed[-1].error_class.value if failed else "error",
            message=result.message[:300],
            ms=round(sum(a.ms for a in result.attempts), 1),
        )
    if isinstance(result, BaseException):
        raise result  # a bug, not a model's failure
    raise TypeError(f"call-model returned {type(result).__name__}")


async def sample_target(request: ModelRequest, policy: FallbackPolicy, skill: str, runs: int) -> list[RunSample]:
    """`runs` runs one after the other on the policy's single target."""
    target = policy.targets[0].key
    return [await sample_once(request, policy, f"validate-{skill}-{target}-{i}") for i in range(1, runs + 1)]


async def validate_plan(plans: list[SkillPlan], runs: int, tolerance: float) -> Matrix:
    """Skills one after the other; the targets of a skill side by side."""
    matrix = Matrix()
    for plan in plans:
        request = skill_request(plan.skill, plan.skill.inputs(None))
        targets = list(dict.fromkeys(plan.policy.targets))
        results = await asyncio.gather(
            *(sample_target(request, plan.policy.with_targets((t,)), plan.skill.name, runs) for t in targets)
        )
        samples = {t.key: r for t, r in zip(targets, results, strict=True)}
        matrix.cells += build_cells(plan.skill.name, samples, plan.skill.output_schema, plan.rule, tolerance)
    return matrix


def record_matrix(matrix: Matrix, flow_run_id: str | None = None) -> int:
    """Upsert one record per cell into the state store; returns how many were written."""
    from aios.state import StateError, open_store

    validated_at = datetime.now(UTC).isoformat()
    try:
        store = open_store()  # not closed: remote stores are shared by the process
        for cell in matrix.cells:
            store.upsert(VALIDATIONS_TABLE, validation_key(cell.skill, cell.target), record_of(cell, validated_at, flow_run_id))
    except StateError as exc:
        log.warning("validation results not recorded: %s", exc)
        return 0
    return len(matrix.cells)


@flow(name="validate-skills", persist_result=False, validate_parameters=False, log_prints=True)
async def validate_skills(
    skills: list[str] | None = None,
    targets: list[str] | None = None,
    runs: int = 2,
    tolerance: float = DEFAULT_TOLERANCE,
) -> State:
    """Run skills on every target of their policy and compare the answers; Failed when any cell fails."""
    if runs < 1:
        raise ConfigError("--runs", f"must be at least 1, not {runs}")
    if tolerance < 0:
        raise ConfigError("--tolerance", f"must not be negative, not {tolerance}")
    plans = plan_validation(skills, targets)
    matrix = await validate_plan(plans, runs, tolerance)
    ctx = FlowRunContext.get()
    record_matrix(matrix, str(ctx.flow_run.id) if ctx and ctx.flow_run else None)
    failed = matrix.failed()
    summary = f"{len(matrix.cells) - len(failed)}/{len(matrix.cells)} cells pass ({runs} run(s) each)"
    if ctx is not None:
        await acreate_table_artifact(key=ARTIFACT_KEY, table=matrix.table_rows(), description=f"Cross-model validation: {summary}")
    data = matrix.model_dump(mode="json")
    if failed:
        names = ", ".join(f"{c.skill}@{c.target}" for c in failed[:5]) + (" ..." if len(failed) > 5 else "")
        return Failed(data=data, message=f"{summary}; failing: {names}")
    return Completed(data=data, message=summary)


__all__ = ["SkillPlan", "plan_validation", "record_matrix", "validate_plan", "validate_skills"]
