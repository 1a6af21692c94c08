"""What a finished run leaves behind: its state record, its Prefect artifact and a log line.

The artifact (the attempt chain as a table) is redacted before it is created, and links to the
run's trace when `AIOS_TRACE_URL_TEMPLATE` is set and the run is being traced. A record the state
store refuses goes to the write journal instead: an answer already paid for is never thrown away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import uuid4

from prefect.artifacts import acreate_markdown_artifact
from prefect.context import FlowRunContext

from aios.config.bootstrap import project_root
from aios.core.failures import ErrorClass
from aios.core.fallback import Outcome
from aios.observability import telemetry
from aios.observability.redaction import redact
from aios.runs.record import RUNS_TABLE, SkillRun
from aios.state import StateError, open_store

log = logging.getLogger("aios.run")


def recorded_run(skill: str, run_ids: Iterable[str], *, strict: bool = False) -> SkillRun | None:
    """The record one of these runs of an occurrence already left (a retried or resubmitted run returns it
    instead of doing its work again); `run_ids` are the run itself and the crashed runs it resubmits.

    A store that cannot answer counts as no record: the run then works, and its answers come from
    the result cache, so nothing is paid twice and the upsert under the occurrence's first run
    (`SkillRun.record_key`) writes one record. `strict` raises StateError instead, for a caller that
    would write a failed record over a completed one it could not see.
    """
    try:
        store = open_store(skill=skill)
        for run_id in run_ids:
            record = store.get(RUNS_TABLE, run_id)
            if record is not None and record.data.get("status") is not None:
                return SkillRun.model_validate(record.data)
    except StateError:
        if strict:
            raise
    return None


def store_record(run: SkillRun) -> None:
    """Write the run's record under its occurrence's first run (a retry or a resubmission overwrites, never adds);
    a record the store refuses goes to the journal."""
    data = run.model_dump(mode="json", exclude_none=True)
    try:
        open_store(skill=run.skill).upsert(RUNS_TABLE, run.record_key, data)
    except StateError as exc:
        run.not_recorded = f"the state store refused the run record ({exc}); {journal_run(run, data, exc)}"
        log.warning("%s: %s", run.skill, run.not_recorded, extra={"skill": run.skill})


async def record_run(run: SkillRun) -> None:
    """Store the run's record (in a thread) while its artifact goes to the API."""
    writes = [asyncio.to_thread(store_record, run)]
    if FlowRunContext.get() is not None:
        writes.append(
            acreate_markdown_artifact(
                key=f"{run.skill}-run",
                markdown=redact(run_markdown(run, trace_url=telemetry.trace_url())),
                description=f"{run.skill}: {run.status.value}",
            )
        )
    await asyncio.gather(*writes)
    log.info(
        "%s %s via %s:%s",
        run.skill,
        run.status.value,
        run.provider,
        run.model,
        extra={"skill": run.skill, "provider": run.provider, "model": run.model, "outcome": run.status.value},
    )


def journal_run(run: SkillRun, data: dict, problem: StateError) -> str:
    """Append the run record to the write journal (`aios state status` lists it); says where it went."""
    from aios.state import load_state_settings
    from aios.state.journal import Journal, JournalEntry

    try:
        settings = load_state_settings()
        path = settings.journal_file()
        backend = settings.backend_for(run.skill)
        store = f"json:{settings.json_path()}" if backend == "json" else f"{backend}:unrecorded"
    except StateError:
        path, store = project_root() / "state" / "journal.jsonl", "unknown:unrecorded"
    now = datetime.now(UTC)
    entry = JournalEntry(
        id=uuid4().hex, store=store, table=RUNS_TABLE, key=run.record_key, op="upsert", data=data,
        version=1, updated_at=now, journaled_at=now, reason=str(problem),
    )
    try:
        Journal(path).append([entry])
    except StateError as exc:
        return f"nor could it go to the journal ({exc})"
    return f"kept in the journal {path}"


def run_markdown(run: SkillRun, trace_url: str | None = None) -> str:
    """The attempt chain as a table: who answered, each failure and why, how long each took; then the
    targets never called and why (down in the health snapshot, or their circuit breaker open)."""
    answered = f"**{run.provider}:{run.model}**" if run.provider else "nobody"
    lines = [f"# {run.skill} — {run.status.value}", "", f"Triage: `{run.triage.value}` · answered by {answered}"]
    if run.reason:
        lines += ["", run.reason]
    called = [a for a in run.attempts if a.outcome is not Outcome.skipped]
    if called:
        lines += ["", "| # | target | outcome | error | ms | detail |", "|---|---|---|---|---|---|"]
    for i, a in enumerate(called, 1):
        error = a.error_class.value if a.error_class else ""
        lines.append(f"| {i} | {a.provider}:{a.model} | {a.outcome.value} | {error} | {a.ms:.0f} | {_cell(a.message)} |")
    skipped = [f"- `{target}`: {why}" for target, why in run.skipped.items()]
    skipped += [
        f"- `{a.provider}:{a.model}`: {'circuit breaker open' if a.error_class is ErrorClass.circuit_open else _cell(a.message)}"
        for a in run.attempts
        if a.outcome is Outcome.skipped
    ]
    if skipped:
        lines += ["", "Not called:", *skipped]
    if run.memory:
        lines += ["", f"Memory extraction: {run.memory}"]
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
