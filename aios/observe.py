"""What a finished run leaves behind: its state record, its Prefect artifact and a log line.

The artifact (the attempt chain as a table) is redacted before it is created, and links to the
run's trace when `AIOS_TRACE_URL_TEMPLATE` is set and the run is being traced.
"""

from __future__ import annotations

import logging

from prefect.artifacts import acreate_markdown_artifact
from prefect.context import FlowRunContext

from aios.observability import telemetry
from aios.observability.redaction import redact
from aios.runs import RUNS_TABLE, SkillRun
from aios.state import open_store

log = logging.getLogger("aios.run")


async def record_run(run: SkillRun) -> None:
    open_store(skill=run.skill).upsert(RUNS_TABLE, run.run_id, run.model_dump(mode="json", exclude_none=True))
    if FlowRunContext.get() is not None:
        await acreate_markdown_artifact(
            key=f"{run.skill}-run",
            markdown=redact(run_markdown(run, trace_url=telemetry.trace_url())),
            description=f"{run.skill}: {run.status.value}",
        )
    log.info(
        "%s %s via %s:%s",
        run.skill,
        run.status.value,
        run.provider,
        run.model,
        extra={"skill": run.skill, "provider": run.provider, "model": run.model, "outcome": run.status.value},
    )


def run_markdown(run: SkillRun, trace_url: str | None = None) -> str:
    """The attempt chain as a table: who answered, each failure and why, how long each took."""
    answered = f"**{run.provider}:{run.model}**" if run.provider else "nobody"
    lines = [
        f"# {run.skill} — {run.status.value}",
        "",
        f"Triage: `{run.triage.value}` · answered by {answered}",
        "",
        f"{run.reason}" if run.reason else "",
        "",
        "| # | target | outcome | error | ms | detail |",
        "|---|---|---|---|---|---|",
    ]
    for i, a in enumerate(run.attempts, 1):
        error = a.error_class.value if a.error_class else ""
        lines.append(f"| {i} | {a.provider}:{a.model} | {a.outcome.value} | {error} | {a.ms:.0f} | {_cell(a.message)} |")
    if run.parked_run_id:
        lines += ["", f"Parked as flow run `{run.parked_run_id}` in the paused `deferred` queue."]
    if trace_url:
        lines += ["", f"[Trace of this run]({trace_url})"]
    return "\n".join(lines)


def _cell(text: str | None, limit: int = 120) -> str:
    """A table cell: one line, no pipes, short."""
    if not text:
        return ""
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"
