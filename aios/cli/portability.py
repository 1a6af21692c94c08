"""Typer commands for portability; the main CLI registers them:

    app.add_typer(sync_app, name="sync")        # aios sync mcp | aios sync agents
    app.command("export")(export_command)       # aios export --to claude|codex|plugin DIR
    app.command("memory")(memory_command)       # aios memory [--limit N]

Exit codes: 0 fine; 1 drift found by --check, a literal secret refused, or the user's own files
that aios will not replace without --force (one `refused:` line each; nothing written); 2 a broken
file (one line on stderr naming the file and the problem, never a traceback).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from aios.errors import ConfigError
from aios.portability.agents import sync_agents
from aios.portability.export import ExportTarget, export_skills
from aios.portability.mcp import sync_mcp
from aios.portability.memory import DEFAULT_FILE, recent_facts
from aios.portability.ownership import RefusedError

sync_app = typer.Typer(
    name="sync",
    help="Keep Claude Code and Codex project files in step (MCP servers, instructions).",
    no_args_is_help=True,
    add_completion=False,
)

RootOption = Annotated[
    Path | None,
    typer.Option(
        "--root",
        envvar="AIOS_HOME",
        help="Project root (default: $AIOS_HOME or the current directory).",
        show_default=False,
    ),
]


class McpSource(StrEnum):
    claude = "claude"
    codex = "codex"


class AgentsSource(StrEnum):
    agents = "agents"
    claude = "claude"


def _root(root: Path | None) -> Path:
    return root if root is not None else Path(os.environ.get("AIOS_HOME") or Path.cwd())


def _out(text: str, style: str | None = None, *, err: bool = False) -> None:
    Console(stderr=err, soft_wrap=True, highlight=False).print(text, style=style, markup=False)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except RefusedError as exc:
        for line in exc.lines:
            _out(f"refused: {line}", "red", err=True)
        raise typer.Exit(1) from None
    except ConfigError as exc:
        _out(f"error: {exc}", "red", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        _out(f"error: {where}{exc.strerror or exc}", "red", err=True)
        raise typer.Exit(2) from None


def _report(warnings: Sequence[str], problems: Sequence[str] = ()) -> None:
    for warning in warnings:
        _out(f"warning: {warning}", "yellow", err=True)
    for problem in problems:
        _out(f"problem: {problem}", "red", err=True)


@sync_app.command("mcp")
def sync_mcp_command(
    root: RootOption = None,
    source: Annotated[
        McpSource, typer.Option("--from", help="The file to follow: claude (.mcp.json) or codex (.codex/config.toml).")
    ] = McpSource.claude,
    check: Annotated[bool, typer.Option("--check", help="Only report drift (exit 1 if any); write nothing.")] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Also remove servers only the other file has (kept by default).")
    ] = False,
) -> None:
    """Map MCP servers between .mcp.json (Claude Code) and .codex/config.toml (Codex)."""
    with _one_line_errors():
        result = sync_mcp(_root(root), source.value, check=check, prune=prune)
    target = result.target_path.name if result.source == "codex" else ".codex/config.toml"
    _report(result.warnings, result.problems)
    if result.only_in_target:
        _out(f"only in {result.target_path.name}: {', '.join(result.only_in_target)} (kept; --prune removes them)")
    if check:
        for line in result.diff_lines():
            _out(line)
        if result.drift:
            _out(f"drift: {target} differs from {result.source_path.name} in {len(result.diff_lines())} server(s)", "red")
        else:
            _out(f"in sync: {target} matches {result.source_path.name}", "green")
    elif result.problems:
        _out(f"not written: {target} is left as it was; fix the problems above and sync again", "red")
    elif result.written:
        for line in result.diff_lines(done=True):
            _out(line)
        _out(
            f"wrote {target}: {result.count('add')} added, {result.count('update')} updated, "
            f"{result.count('remove')} removed",
            "green",
        )
    else:
        _out(f"nothing to do: {target} already matches {result.source_path.name}", "green")
    if (check and result.drift) or result.problems:
        raise typer.Exit(1)


@sync_app.command("agents")
def sync_agents_command(
    root: RootOption = None,
    source: Annotated[
        AgentsSource | None,
        typer.Option(
            "--from",
            help="The file to follow: agents (AGENTS.md, the default) or claude (generate AGENTS.md from CLAUDE.md).",
            show_default=False,
        ),
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Only report divergence (exit 1 if any).")] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="With --from claude: replace a hand-written AGENTS.md (moved to .aios-backups/ first)."),
    ] = False,
) -> None:
    """Keep AGENTS.md (Codex) and CLAUDE.md (Claude Code) in step."""
    with _one_line_errors():
        result = sync_agents(_root(root), source.value if source else None, check=check, force=force)
    _report(result.warnings)
    for old, backup in result.backups:
        _out(f"backup  {old} -> {backup}")
    if not result.drift:
        _out(f"in sync: {result.message}", "green")
    elif check:
        _out(f"drift: {result.message}", "red")
        raise typer.Exit(1)
    else:
        verb = "created" if result.action == "create" else "updated"
        _out(f"{verb} {result.target.name}: {result.message}", "green")


def export_command(
    dest: Annotated[Path, typer.Argument(help="Directory to export into (a project or a marketplace repo).")],
    to: Annotated[ExportTarget, typer.Option("--to", help="claude, codex, or plugin (a marketplace for both).")],
    root: RootOption = None,
    owner: Annotated[str, typer.Option("--owner", help="Plugin author / marketplace owner name.")] = "aios",
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace skill folders and files aios did not write (moved to DIR/.aios-backups/ first)."),
    ] = False,
) -> None:
    """Export skills for Claude Code (.claude/skills), Codex (.agents/skills) or as a plugin."""
    with _one_line_errors():
        result = export_skills(_root(root), to, dest, owner=owner, force=force)
    _report(result.warnings)
    for old, backup in result.backups:
        _out(f"backup  {old} -> {backup}")
    for folder in result.skill_dirs:
        _out(f"skill   {folder}")
    for manifest in result.manifests:
        _out(f"wrote   {manifest}")
    _out(f"exported {len(result.skills)} skill(s) for {to.value} to {dest}", "green")


def memory_command(
    root: RootOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many recent facts to show.")] = 20,
    file: Annotated[str, typer.Option("--file", help="File under memory/.")] = DEFAULT_FILE,
) -> None:
    """List the facts skills learned most recently (memory/learned.md), oldest first."""
    with _one_line_errors():
        facts = recent_facts(_root(root) / "memory", limit, file)
    if not facts:
        _out("no learned facts yet")
        return
    for fact in facts:
        when = fact.learned_at.isoformat() if fact.learned_at else "          "
        source = fact.skill + (f" run {fact.source_run}" if fact.source_run else "")
        _out(f"{when}  {fact.text}" + (f"  ({source})" if source else ""))
