"""The status-check flow: read the status pages, probe every target, look at real calls, decide health,
tell the user what changed, and pause or resume the deferred queue.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from prefect import flow, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.states import Failed, State

from aios.outage import alerts, check_names, deferral, health_store, recovery
from aios.core.failures import ProviderFailure, Verdict, classify
from aios.core.fallback import Attempt, Outcome
from aios.core.health import (
    Change,
    Health,
    HealthState,
    Hysteresis,
    Signal,
    aggregate,
    call_signals,
    probe_plan,
    probe_signals,
    readiness_signals,
)
from aios.core.policy import Target, Timeouts
from aios.core.statuspage import signals_from_summary
from aios.providers import ModelRequest
from aios.providers.agent_cli import AgentCliSettings, cli_readiness
from aios.runs.record import RUNS_TABLE
from aios.config.runtime import get_runtime
from aios.config.settings import AGENT_CLI_PROVIDERS
from aios.skills.loader import load_skills
from aios.state import open_store

PROBE = ModelRequest(
    system="Health probe.",
    prompt='Reply with {"ok": true}.',
    schema_name="probe",
    output_schema={"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False},
    max_tokens=16,
)


@task(name="read-status-pages", cache_policy=NO_CACHE)
async def read_status_pages(targets: list[Target]) -> list[Signal]:
    settings = get_runtime().settings
    pages = [("anthropic", settings.status_claude_url, settings.status_claude_component)]
    if settings.status_openai_url:
        pages.append(("openai", settings.status_openai_url, settings.status_openai_component))
    signals: list[Signal] = []
    async with httpx.AsyncClient(timeout=settings.status_timeout) as client:
        for provider, url, component in pages:
            try:
                response = await client.get(f"{url.rstrip('/')}/api/v2/summary.json")
                response.raise_for_status()
                summary = response.json()
            except (httpx.HTTPError, ValueError):
                continue  # an unreachable status page is no evidence either way
            signals += signals_from_summary(summary, provider, component, targets)
    return signals


@task(name="probe-targets", cache_policy=NO_CACHE)
async def probe_targets(targets: list[Target]) -> list[Signal]:
    """One minimal request per target, outside the breakers (a probe must see the truth)."""
    runtime = get_runtime()
    timeouts = Timeouts(connect=runtime.settings.probe_timeout, read=runtime.settings.probe_timeout)
    results: list[tuple[Target, Verdict | None]] = []
    for target in targets:
        try:
            await runtime.providers.complete(target, PROBE, None, timeouts)
        except ProviderFailure as failure:
            results.append((target, classify(failure, max_retry_after=0)))
        else:
            results.append((target, None))
    return probe_signals(results)


@task(name="check-cli-targets", cache_policy=NO_CACHE)
async def check_cli_targets(targets: list[Target]) -> list[Signal]:
    """The free readiness check of each CLI target (binary, version, login): no model call."""
    results = [(t, (await cli_readiness(t.key)).problem) for t in targets]
    return readiness_signals(results)


def read_calls(since: datetime | None) -> list[tuple[str, bool]]:
    """Real calls made since the last check, from the run records every process writes: (target, unhealthy)."""
    calls = []
    for record in open_store().list(RUNS_TABLE):
        finished = record.data.get("finished_at")
        if since and (not finished or datetime.fromisoformat(finished) <= since):
            continue
        for a in record.data.get("attempts", []):
            attempt = Attempt.model_validate(a)
            if attempt.outcome is not Outcome.skipped:
                calls.append((f"{attempt.provider}:{attempt.model}", attempt.unhealthy))
    return calls


@flow(
    name="status-check",
    flow_run_name=check_names.check_run_name,  # then "… · anthropic down" when the check ends
    on_completion=[check_names.name_by_outcome],
    on_failure=[check_names.name_by_outcome],
    persist_result=False,
)
async def status_check(probe: bool | None = None) -> dict[str, Any] | State:
    """Decide health per provider and model, alert on change, pause/resume the deferred queue."""
    runtime = get_runtime()
    settings = runtime.settings
    if problem := health_store.fleet_problem(settings):  # `aios doctor`'s reason; no probe, no alert, no pause
        return Failed(message=problem)
    policy = settings.policy()
    targets = list(policy.targets)
    previous, since = health_store.read_state()
    now = datetime.now(UTC)

    # gather
    signals = await read_status_pages(targets)
    asked, readiness = probe_plan(targets, AGENT_CLI_PROVIDERS, AgentCliSettings().probe_cli_targets)
    if readiness:
        signals += await check_cli_targets(readiness)
    if asked and (settings.probe if probe is None else probe):
        signals += await probe_targets(asked)
    signals += call_signals(read_calls(since))

    # decide
    state, changes = aggregate(previous, signals, Hysteresis(recover_after=settings.health_recover_after))
    healthy = state.snapshot().provider_usable(policy.primary_provider, targets)

    # persist
    health_store.write_state(state, now)
    health_store.write_snapshot(state.snapshot())
    queue_changed = await deferral.set_paused(not healthy)
    resubmitted = await recovery.resubmit_lost(s.name for s in load_skills(settings.skills_dir))

    # publish
    subjects = sorted({t.provider for t in targets} | {t.key for t in targets})
    view = health_store.build_view(state, subjects, health_store.read_view(), now, paused=not healthy)
    await health_store.publish(view)
    news = [c for c in changes if not alerts.is_noise(c)]
    for change in news:
        emit_event(**health_event(change))
    alerts.health_alert(news)
    await acreate_table_artifact(key="provider-health", table=view.rows(), description=health_summary(view))
    return {
        "claude_healthy": healthy,
        "queue_paused": not healthy,
        "queue_changed": queue_changed,
        "resubmitted": resubmitted,
        "changes": [c.model_dump(mode="json") for c in changes],
        "health": {k: v.health.value for k, v in state.subjects.items()},
    }


def health_event(change: Change) -> dict[str, Any]:
    """`aios.health.down` / `.degraded` / `.recovered`, old and new health in the resource labels, so the
    event feed reads "anthropic: healthy → down (status page: major outage)" without opening the Raw tab."""
    kind = {Health.down: "down", Health.degraded: "degraded"}.get(change.new, "recovered")
    return {
        "event": f"aios.health.{kind}",
        "resource": {
            "prefect.resource.id": f"aios.target.{change.subject}",
            "prefect.resource.name": f"{change.subject}: {change.old.value} → {change.new.value}",
            "aios.subject": change.subject,
            "aios.health.old": change.old.value,
            "aios.health.new": change.new.value,
            "aios.health.reason": change.detail[:200],
        },
        "payload": {"subject": change.subject, "old": change.old.value, "new": change.new.value, "detail": change.detail},
    }


def health_summary(view: health_store.HealthView) -> str:
    """The artifact card's one line: who is down since when first (the card cuts long text off)."""
    bad = view.unhealthy()
    unknown = [k for k, v in view.subjects.items() if v.health is Health.unknown and ":" not in k]
    head = "; ".join(bad) if bad else ("all healthy" if not unknown else f"no signal from {', '.join(unknown)}")
    queue = "deferred queue paused" if view.deferred_queue_paused else "deferred queue running"
    return f"{head} · {queue} · checked {view.checked_at:%Y-%m-%d %H:%M:%S} UTC"
