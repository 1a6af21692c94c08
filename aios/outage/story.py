"""What a skill run shows in the Prefect UI: its name, its tags, its log lines and links between runs.

The runs list can only be read at a glance if outcomes differ there: a failover, a deferral and a drop
all end in a Completed-type state, so the run's name and tags carry the story (filter the runs list by
the tag `failover`, `outcome:deferred`, `answered-by:openai`, ...).
"""

from __future__ import annotations

from collections.abc import Iterable

from aios.core.fallback import Attempt, Outcome
from aios.runs.record import RunStatus, SkillRun

FAILOVER_TAG = "failover"
WAITING_TAG = "waiting-for-claude"


def ui_url() -> str | None:
    """The Prefect UI's address (PREFECT_UI_URL, else derived from PREFECT_API_URL); None without a server."""
    from prefect.settings import PREFECT_UI_URL

    url = PREFECT_UI_URL.value()
    return url.rstrip("/") if url else None


def run_link(run_id: str, label: str | None = None) -> str:
    """A Markdown link to a flow run's page in the UI (the bare id when no UI is known)."""
    base = ui_url()
    label = label or run_id
    return f"[{label}]({base}/runs/flow-run/{run_id})" if base else f"`{label}`"


def failed_over(run: SkillRun, primary: str) -> bool:
    return run.status is RunStatus.completed and run.provider is not None and run.provider != primary


def run_tags(run: SkillRun, primary: str) -> list[str]:
    """Tags the runs list can be filtered by."""
    tags = [f"outcome:{run.status.value}", f"triage:{run.triage.value}"]
    if run.provider:
        tags.append(f"answered-by:{run.provider}")
    if failed_over(run, primary):
        tags.append(FAILOVER_TAG)
    return tags


def run_name(run: SkillRun, primary: str, started: str) -> str:
    """`research-lead 06-01 12:00:03 · failover to openai:gpt-5.5`, `weekly-report ... · deferred`."""
    head = f"{run.skill} {started}"
    if failed_over(run, primary):
        return f"{head} · failover to {run.provider}:{run.model}"
    if run.status is RunStatus.completed:
        return f"{head} · {run.provider}:{run.model}"
    return f"{head} · {run.status.value}"


def attempt_line(attempt: Attempt) -> str:
    """`anthropic:claude-opus-5-5 overloaded (529) in 12 ms`, `openai:gpt-5.5 answered in 120 ms`."""
    target = f"{attempt.provider}:{attempt.model}"
    if attempt.outcome is Outcome.ok:
        return f"{target} answered in {attempt.ms:.0f} ms"
    if attempt.outcome is Outcome.skipped:
        return f"{target} skipped" + (f" ({attempt.message})" if attempt.message else "")
    what = attempt.error_class.value if attempt.error_class else "failed"
    status = f" ({attempt.status})" if attempt.status else ""
    return f"{target} {what}{status} in {attempt.ms:.0f} ms"


def story_lines(run: SkillRun, primary: str) -> Iterable[str]:
    """The run's log lines: each attempt, then the failover, deferral or drop, in plain words."""
    for attempt in run.attempts:
        yield f"attempt: {attempt_line(attempt)}"
    failed = [a for a in run.attempts if a.outcome is Outcome.failed]
    if failed_over(run, primary):
        first = failed[0] if failed else None
        cause = f"{attempt_line(first).rsplit(' in ', 1)[0]} → " if first else f"{primary} unusable → "
        yield f"failover: {cause}{run.provider}:{run.model} answered"
    elif run.status is RunStatus.deferred:
        yield f"deferred: {run.reason or 'Claude is down'}; parked as run {run.parked_run_id}, runs when Claude is healthy"
    elif run.status is RunStatus.dropped:
        yield f"dropped: {run.reason or 'Claude is down'}; nothing will retry it"
    elif run.status is RunStatus.failed:
        yield f"failed: {run.reason or 'no valid output'}"


async def mark_run(flow_run_id: str, run: SkillRun, primary: str, started: str, existing_tags: Iterable[str]) -> None:
    """Rename and tag the running flow run so the runs list tells the outcome."""
    from prefect.client.orchestration import get_client

    tags = list(dict.fromkeys([*existing_tags, *run_tags(run, primary)]))
    async with get_client() as client:
        await client.update_flow_run(flow_run_id, name=run_name(run, primary, started), tags=tags)
