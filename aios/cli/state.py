"""``aios state ...``: inspect and replay the write journal.

``aios/cli/app.py`` registers it with ``app.add_typer(state_app, name="state")``.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Annotated

import typer
from rich.table import Table

from aios.cli.console import JsonFlag, console, err_console, fail

from aios.state.base import StateError
from aios.state.config import StateSettings, load_state_settings

state_app = typer.Typer(
    name="state",
    help="Skill state: journal status and replay (writes queued while Sheets/Airtable was down).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_out = console
_err = err_console


def _settings() -> StateSettings:
    try:
        return load_state_settings()
    except StateError as exc:
        fail(str(exc))
        raise  # pragma: no cover


@state_app.command("status")
def status_command(as_json: JsonFlag = False) -> None:
    """Show the backend in use and the writes waiting in the journal."""
    from aios.state.journal import conflicts, notices, pending

    settings = _settings()
    try:
        entries = pending(settings)
        conflicted = conflicts(settings)
        notes = notices(settings)
    except StateError as exc:
        fail(str(exc))
        return
    counts = Counter((e.store, e.table) for e in entries)
    info = {
        "backend": settings.backend,
        "skill_backends": settings.skill_backends,
        "journal": str(settings.journal_file()),
        "pending": len(entries),
        "by_table": [{"store": s, "table": t, "pending": n} for (s, t), n in sorted(counts.items())],
        "oldest": min((e.journaled_at for e in entries), default=None),
        "conflicts": len(conflicted),
        "notices": notes,
    }
    if as_json:
        print(json.dumps(info, default=str, indent=2))
        return
    _out.print(f"backend: {settings.backend}  journal: {info['journal']}", highlight=False)
    if not entries:
        _out.print("journal: empty (nothing pending)")
    else:
        table = Table("store", "table", "pending")
        for row in info["by_table"]:
            table.add_row(row["store"], row["table"], str(row["pending"]))
        _out.print(table)
        _out.print(f"{len(entries)} pending write(s), oldest {info['oldest']}", highlight=False)
    if conflicted:
        _out.print(
            f"[yellow]{len(conflicted)} conflicting write(s)[/yellow] not applied; see "
            f"{settings.journal_file().with_name(settings.journal_file().stem + '.conflicts.jsonl')}",
            highlight=False,
        )
    for line in notes:
        _out.print(f"[yellow]note:[/yellow] {line}", highlight=False, soft_wrap=True)


@state_app.command("sync")
def sync_command(
    backend: Annotated[str | None, typer.Option("--backend", help="Only replay this backend (sheets or airtable).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Replay the journal now: apply queued writes in order, skipping ones already applied."""
    from aios.state.journal import sync

    settings = _settings()
    try:
        report = sync(settings, backend=backend)
    except StateError as exc:
        fail(str(exc))
        return
    if as_json:
        print(json.dumps(report.__dict__, indent=2))
    else:
        _out.print(
            f"applied {report.applied}, already applied {report.skipped}, conflicts {len(report.conflicts)}, "
            f"still pending {report.remaining}",
            highlight=False,
        )
        for line in report.conflicts:
            _out.print(f"conflict: {line}", highlight=False)
        for line in report.notices:
            _out.print(f"[yellow]note:[/yellow] {line}", highlight=False, soft_wrap=True)
    if report.errors:
        for line in report.errors[:-1]:
            _err.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
        fail(report.errors[-1], code=1)
