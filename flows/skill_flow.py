"""Each skill is a Prefect flow named after it; its model call is a Prefect task.

The flow reads like the process it runs: load the skill, triage it against the health snapshot,
call the models through the fallback policy, record what happened.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import uuid4

from prefect import Flow, task
from prefect.context import FlowRunContext, TaskRunContext
from prefect.transactions import get_transaction
from prefect.utilities.annotations import quote
from prefect.states import Cancelled, Completed, Failed, State
from pydantic import BaseModel, WithJsonSchema

from aios.core.contract import contract_validator
from aios.core.deadline import RunDeadline
from aios.core.health import HealthSnapshot, unexplained_failover
from aios.core.fallback import Attempt, ChainAborted, ChainResult, NoAnswer, run_chain
from aios.core.policy import FallbackPolicy
from aios.core.triage import RunDecision, Triage, after_chain_failed, plan_run
from aios.providers import ModelRequest
from aios.runs.record import RUNS_TABLE, RunStatus, SkillRun
from aios.config.runtime import get_runtime
from aios.skills.loader import Skill, find_skill, load_skills
from aios.skills.prompt import skill_request
from aios.observability import otel, telemetry

otel.setup()  # before Prefect opens the flow-run span, so ours nest under it


class NoAnswerRecord(BaseModel):
    """A chain with no answer, as data: an expected outcome of an outage, not a crash to log a traceback for."""

    message: str
    aborted: bool  # a bad request: nobody else was called
    attempts: list[Attempt]
    misconfigured: list[str]


def answer_key(skill: Skill, inputs: dict[str, Any], ctx: FlowRunContext | None) -> str | None:
    """The cache key of a skill's answer: skill, inputs, contract and the occurrence it answers.

    The prompt is left out on purpose: memory and context may change between the two tries.
    """
    occurrence = run_occurrence(ctx)
    if occurrence is None:
        return None  # outside Prefect there is no run to resume
    return _digest("answer", skill.name, inputs, skill.output_schema, occurrence)


def run_occurrence(ctx: FlowRunContext | None) -> str | None:
    """The occurrence a flow run answers, so a retry, a re-run or a resubmission of it reuses the answer.

    A resubmitted run carries its crashed predecessor's occurrence in a tag (aios/outage/recovery.py);
    otherwise it is the flow run's idempotency key (a scheduled occurrence, a parked run, a submitted
    run) or else the flow run itself.
    """
    from aios.outage.recovery import occurrence_of

    if ctx is None or ctx.flow_run is None:
        return None
    return occurrence_of(ctx.flow_run)


def memory_key(skill: Skill, occurrence: str) -> str:
    """The memory extraction of one occurrence is asked once, whatever retries or resubmits its run."""
    return _digest("memory", skill.name, occurrence)


def _memory_occurrence(run: SkillRun) -> str:
    return run_occurrence(FlowRunContext.get()) or run.run_id


def _digest(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return f"aios-{parts[0]}-{hashlib.sha256(blob.encode()).hexdigest()}"


def _given_key(context: TaskRunContext, parameters: dict[str, Any]) -> str | None:
    return parameters.get("key")  # None: not cached


@task(name="call-model", cache_key_fn=_given_key, persist_result=True)
async def call_model(request: ModelRequest, policy: FallbackPolicy, key: str | None = None) -> ChainResult | State:
    """Walk the fallback chain until a target returns an answer that satisfies the contract.

    A valid answer is persisted under `key` (Prefect result storage), so a retried run reuses it
    instead of paying again; a failed chain is never stored, so the retry asks again.
    """
    from aios.observability.redaction import redact

    runtime = get_runtime()

    async def call(target, feedback):
        return await runtime.providers.complete(target, request, feedback, policy.timeouts)

    try:
        return await run_chain(
            policy,
            call,
            contract_validator(request.output_schema),
            runtime.breakers,
            hooks=telemetry.ModelAttempts(policy, request),  # a "chat {model}" span + metrics per call
            redact=redact,  # no key an upstream echoed back reaches a record or a state message
            latencies=runtime.latencies,
        )
    except NoAnswer as exc:
        failure = NoAnswerRecord(
            message=str(exc), aborted=isinstance(exc, ChainAborted), attempts=exc.attempts, misconfigured=exc.misconfigured
        )
        transaction = get_transaction()
        if transaction is not None:
            transaction.write_on_commit = False  # an outage is not an answer: never cache it
        return Failed(message=failure.message, data=failure)


async def run_skill(skill: Skill, inputs: dict[str, Any] | None = None) -> SkillRun:
    """The body of every skill flow: triage, ask the models, park or drop if Claude is down, record."""
    from aios.runs import recorder
    from aios.outage import deferral, health_store, recovery

    settings = get_runtime().settings
    deadline = RunDeadline(skill.metadata.deadline)  # bounds the whole run, memory extraction included
    inputs = skill.inputs(inputs)
    if skill.metadata.reads is not None:  # a report is given the user's records (flows/records.py)
        from flows.records import read_records

        inputs = read_records(skill, inputs)
    ctx = FlowRunContext.get()
    run = SkillRun(
        run_id=str(ctx.flow_run.id) if ctx and ctx.flow_run else uuid4().hex,
        first_run_id=recovery.first_run_of(ctx.flow_run) if ctx and ctx.flow_run else None,
        skill=skill.name,
        triage=skill.triage,
        status=RunStatus.failed,
        inputs=inputs,
    )
    with telemetry.skill_run_span(run):  # the run's span: status, skips, deferral/drop; attempts nest under it
        health = await health_store.aread_snapshot()
        policy = settings.skill_policy(skill)
        plan = plan_run(skill.triage, policy, health)
        run.reason = plan.reason
        run.skipped = {t.key: f"health snapshot says {health.target(t).value}" for t in plan.skipped}
        decision = plan.decision
        if decision is RunDecision.run:
            decision = await ask_models(skill, run, deadline.bound(plan.policy), health)

        if decision is RunDecision.defer:
            try:
                run.parked_run_id = await deferral.park_run(skill, inputs, ctx, run.reason)
                run.status = RunStatus.deferred
            except deferral.ParkError as exc:
                run.status, run.reason = RunStatus.failed, str(exc)
        elif decision is RunDecision.drop:
            run.status = RunStatus.dropped

        if run.ok and skill.metadata.memory and settings.memory_extraction:
            memory_policy, run.memory = deadline.after_answer(plan.policy)
            if memory_policy is not None:
                run.memory = await extract_memory(skill, run, memory_policy)
        run.finished_at = datetime.now(UTC)
        stand_down = await recovery.superseded(ctx.flow_run if ctx else None)  # its successor records the occurrence
        if stand_down is None:
            # Independent writes to the API and the store, so at once: the name and tags, the record and the artifact.
            await asyncio.gather(tell_story(run, policy.primary_provider, ctx), recorder.record_run(run))
    if stand_down is not None:
        raise recovery.Superseded(stand_down)
    return run


async def tell_story(run: SkillRun, primary: str, ctx: FlowRunContext | None) -> None:
    """Log each attempt and the outcome, then name and tag the flow run so the runs list shows it."""
    import httpx
    from prefect.logging import get_run_logger

    from aios.outage import story

    if ctx is None or ctx.flow_run is None:
        return
    logger = get_run_logger()
    trace_id = telemetry.current_trace_id()
    for line in story.story_lines(run, primary):
        logger.info(f"{line} (trace {trace_id})" if trace_id else line)
    existing = [t for t in ctx.flow_run.tags if t != story.WAITING_TAG]
    try:
        await story.mark_run(str(ctx.flow_run.id), run, primary, f"{run.started_at:%m-%d %H:%M:%S}", existing)
    except httpx.HTTPError as exc:  # the record matters more than the label
        logger.warning(f"could not name and tag this run in Prefect: {type(exc).__name__}")


async def ask_models(skill: Skill, run: SkillRun, policy: FallbackPolicy, health: HealthSnapshot) -> RunDecision | None:
    """Call the chain and record its answer or failure; returns what triage says to do after a failure."""
    from aios.outage import alerts

    key = answer_key(skill, run.inputs, FlowRunContext.get())
    # quote: Prefect would otherwise walk every field of the request and the policy twice per run looking
    # for upstream futures (there are none); the task receives them unwrapped.
    state = await call_model(quote(skill_request(skill, run.inputs)), quote(policy), key, return_state=True)
    result = await state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result  # a bug, not an outage: let Prefect show it
    run.attempts, run.misconfigured = result.attempts, result.misconfigured
    if isinstance(result, NoAnswerRecord):
        run.reason = result.message
        return None if result.aborted else after_chain_failed(skill.triage)
    answer = result.answer
    run.status = RunStatus.completed
    run.provider, run.model, run.output, run.usage = answer.provider, answer.model, answer.output, answer.usage
    primary = policy.primary_provider
    if unexplained_failover(answer.provider, primary, health):  # tell the user (once per burst)
        alerts.failover_alert(primary, skill.name, f"{answer.provider}:{answer.model}", run.attempts[0].message or "")
    return None


@task(name="extract-memory", cache_key_fn=lambda ctx, params: memory_key(params["skill"], _memory_occurrence(params["run"])), persist_result=True)
async def extract_memory(skill: Skill, run: SkillRun, policy: FallbackPolicy) -> str:
    """Ask the model, through the same fallback policy, for durable facts; merge new ones into memory/.

    Returns what happened, for the run record."""
    from aios.portability.memory import FACTS_SCHEMA, extraction_prompt, facts_from_output, merge_facts, recent_facts

    settings = get_runtime().settings
    request = ModelRequest(
        system="You keep the long-term memory of a business's AI operating system.",
        prompt=extraction_prompt(skill.name, run.output, recent_facts(settings.memory_path, limit=50)),
        schema_name="memory_facts",
        output_schema=FACTS_SCHEMA,
        max_tokens=1024,
    )
    state = await call_model(quote(request), quote(policy), memory_key(skill, _memory_occurrence(run)), return_state=True)
    result = await state.result(raise_on_failure=False)
    if not isinstance(result, ChainResult):  # memory is a bonus: a failed extraction never fails the run
        return f"not extracted: {result.message}" if isinstance(result, NoAnswerRecord) else "not extracted"
    facts = facts_from_output(result.answer.output, skill=skill.name, source_run=run.run_id)
    return f"{len(merge_facts(settings.memory_path, facts))} new facts"


def final_state(run: SkillRun) -> State:
    """Deferred and Dropped are named Completed states: nothing failed, and the UI says why."""
    from aios.outage import story

    data = run.model_dump(mode="json")
    if run.status is RunStatus.completed:
        failed = [story.attempt_line(a).rsplit(" in ", 1)[0] for a in run.attempts if a.outcome.value == "failed"]
        after = f" after {', '.join(failed)}" if failed else ""
        return Completed(data=data, message=f"answered by {run.provider}:{run.model}{after}")
    if run.status is RunStatus.deferred:
        where = story.ui_url()
        link = f" ({where}/runs/flow-run/{run.parked_run_id})" if where else ""
        return Completed(
            name="Deferred", data=data, message=f"parked as run {run.parked_run_id}{link}, waits for Claude: {run.reason}"
        )
    if run.status is RunStatus.dropped:
        return Completed(name="Dropped", data=data, message=f"dropped: {run.reason}")
    return Failed(data=data, message=run.reason or "no valid output")


async def no_retry_for(ctx: FlowRunContext | None) -> None:
    """A run that got no valid answer fails now: its retries are for infrastructure failures only.

    Prefect's server retries every transition to Failed while the run count is within the run's
    `retries` (rule RetryFailedFlows), whatever failed; it reads that number from the run's policy
    when the Failed state is proposed, so setting it to 0 first makes this Failed final.
    """
    from prefect.client.orchestration import get_client

    if ctx is None or ctx.flow_run is None:
        return
    async with get_client() as client:
        current = await client.read_flow_run(ctx.flow_run.id)
        policy = current.empirical_policy.model_copy(update={"retries": 0})
        await client.update_flow_run(ctx.flow_run.id, empirical_policy=policy)


def build_skill_flow(name: str) -> Flow:
    """A Prefect flow for one skill; the flow's name is the skill's name.

    Its one parameter, `inputs`, carries the skill's input schema (aios/skills/input_schema.py), so the
    deployment's Run form shows each input as a named field with its sample as the default, and the
    API refuses a wrong-typed or unknown input.
    """
    from aios.skills.input_schema import input_schema

    declared = find_skill(get_runtime().settings.skills_dir, name)

    async def skill_flow(inputs: dict[str, Any] | None = None) -> State:
        from aios.outage.health_store import fleet_problem
        from aios.outage.recovery import SUPERSEDED, Superseded, lineage_of
        from aios.runs import recorder

        ctx = FlowRunContext.get()
        if problem := fleet_problem(get_runtime().settings):  # a worker on a fleet: `aios doctor`'s reason, no model call
            await no_retry_for(ctx)
            return Failed(message=problem)
        if ctx and ctx.flow_run and (done := recorder.recorded_run(name, lineage_of(ctx.flow_run))):
            state = final_state(done)  # this occurrence already finished its work: write nothing twice
        else:
            try:
                state = final_state(await run_skill(find_skill(get_runtime().settings.skills_dir, name), inputs))
            except Superseded as exc:  # declared dead while it ran: no second record, no second Completed
                return Cancelled(name=SUPERSEDED, message=str(exc))
        if state.is_failed():
            await no_retry_for(ctx)  # no valid answer is an outcome, not an infrastructure failure
        return state

    skill_flow.__annotations__["inputs"] = Annotated[dict[str, Any], WithJsonSchema(input_schema(declared))]
    skill_flow.__defaults__ = (dict(declared.default_inputs),)
    skill_flow.__doc__ = (
        f"Run the `{name}` skill through the fallback policy.\n\nArgs:\n"
        f"    inputs: The skill's inputs; the defaults are the samples in skills/{name}/inputs.json."
    )
    # The final state is persisted, so the server refuses to send a finished run back to Pending
    # (a second claimant cannot execute it again). Retries are for infrastructure failures (an exception,
    # a lost API; a business Failed turns them off first, see no_retry_for): a retry of a run that
    # already left its record returns that record, and paid answers come from the cache.
    # No `flow_run_name`: Prefect would resolve it before the body with a blocking result-storage lookup
    # and one more API call per run; the run is named once, with its outcome, at the end (tell_story).
    return SkillFlow(
        fn=skill_flow,
        name=name,
        persist_result=True,
        result_storage=host_result_storage(),
        retries=FLOW_RETRIES,
        retry_delay_seconds=FLOW_RETRY_DELAY,
        validate_parameters=False,
        log_prints=True,
    )


class SkillFlow(Flow):
    """A skill's flow. Called in-process, its runs borrow this process's Prefect clients (aios/runs/clients.py)
    instead of building two per run; run by a worker or the drainer, it is an ordinary Prefect flow."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        run = super().__call__(*args, **kwargs)
        return _with_shared_clients(run) if asyncio.iscoroutine(run) else run  # skill flows are async


async def _with_shared_clients(run: Any) -> Any:
    from aios.runs.clients import shared_clients

    try:
        async with shared_clients():
            return await run
    finally:
        run.close()  # a no-op once it ran; if the clients could not be built, it never starts


def host_result_storage() -> Path | None:
    """This host's result storage (PREFECT_LOCAL_STORAGE_PATH), named on each skill flow so that Prefect stops
    asking the server for it at the start of every run.

    A flow that names no storage costs every run a `GET /admin/storage` that blocks the event loop (Prefect
    reads it on a sync client in the run's set-up). The path is what Prefect falls back to when neither
    PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK nor the server names a block, read from this process's settings, so
    each host of a fleet keeps its own (a server-wide block with one host's path would break the others).
    When a block is named, or the server cannot be asked, None leaves the choice to Prefect, run by run.
    """
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.results.default_storage_block is not None or not settings.api.url:
        return None  # Prefect resolves a configured block once per process; no API: an ephemeral server decides
    return settings.results.local_storage_path if _server_names_storage(settings.api.url) is False else None


@functools.cache
def _server_names_storage(api_url: str) -> bool | None:
    """Whether the server names a default result storage block; None if it cannot say. Asked once per process."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    try:
        with get_client(sync_client=True) as client:
            return client.read_server_default_result_storage().default_result_storage_block_id is not None
    except (httpx.HTTPError, PrefectHTTPStatusError, OSError, RuntimeError):
        return None


def skill_flows() -> dict[str, Flow]:
    """One flow per skill folder, built once per process."""
    global _FLOWS
    if _FLOWS is None:
        _FLOWS = {s.name: build_skill_flow(s.name) for s in load_skills(get_runtime().settings.skills_dir)}
    return _FLOWS


_FLOWS: dict[str, Flow] | None = None
FLOW_RETRIES = 2
FLOW_RETRY_DELAY = 2  # seconds

__all__ = ["RUNS_TABLE", "SkillFlow", "Triage", "build_skill_flow", "call_model", "final_state", "run_skill", "skill_flows"]
