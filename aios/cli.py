"""The `aios` command line. Every user error is one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aios.bootstrap import prepare_environment

prepare_environment()

from aios.errors import AiosError  # noqa: E402
from aios.settings import get_settings  # noqa: E402

app = typer.Typer(
    name="aios",
    help="A model-agnostic AI operating system on Prefect: skills keep running when Claude is down.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command("skills")
def skills_command(as_json: JsonFlag = False) -> None:
    """List the skills: name, triage, schedule, contract."""
    from aios.skills import load_skills

    skills = load_skills(get_settings().skills_dir)
    rows = [
        {
            "name": s.name,
            "triage": s.triage.value,
            "schedule": s.metadata.schedule,
            "contract": s.metadata.contract,
            "models": [str(m) for m in s.metadata.models],
            "description": s.description,
        }
        for s in skills
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("skill", "triage", "schedule", "contract", "models")
    for r in rows:
        table.add_row(r["name"], r["triage"], r["schedule"] or "-", r["contract"], ", ".join(r["models"]) or "default")
    console.print(table)


@app.command("run")
def run_command(
    skill: Annotated[str, typer.Argument(help="The skill's name (its folder under skills/).")],
    inputs: Annotated[list[str], typer.Option("--input", "-i", help="key=value, repeatable.")] = [],  # noqa: B006
    as_json: JsonFlag = False,
) -> None:
    """Run one skill now as a Prefect flow; exit 0 only when it produced a valid output."""
    from aios.skills import find_skill, parse_inputs
    from flows.skill import build_skill_flow

    find_skill(get_settings().skills_dir, skill)  # one clear line if the skill is broken
    overrides = parse_inputs(inputs)
    state = asyncio.run(build_skill_flow(skill)(inputs=overrides, return_state=True))
    data = state.data if isinstance(state.data, dict) else None
    if data is None:
        fail(f"{skill}: the flow ended {state.name} without a result: {state.message}")
    from aios.runs import SkillRun

    run = SkillRun.model_validate(data)
    if as_json:
        print(json.dumps(run.summary(), indent=2, default=str))
    else:
        _print_run(run)
    if not run.ok:
        err_console.print(f"{skill}: {run.status.value}: {run.reason}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _print_run(run) -> None:
    table = Table("#", "target", "outcome", "error", "ms", title=f"{run.skill}: {run.status.value}")
    for i, a in enumerate(run.attempts, 1):
        table.add_row(str(i), f"{a.provider}:{a.model}", a.outcome.value, a.error_class.value if a.error_class else "", f"{a.ms:.0f}")
    console.print(table)
    if run.output is not None:
        console.print_json(json.dumps(run.output))


@app.command("emulate")
def emulate_command(
    port: Annotated[int, typer.Option(help="Port for all emulators.")] = 8765,
    host: Annotated[str, typer.Option(help="Loopback address to bind.")] = "127.0.0.1",
) -> None:
    """Start the local emulators (Anthropic, OpenAI, status pages, Sheets, Airtable) on one port."""
    from aios.emulators.server import serve

    base = f"http://{host}:{port}"
    console.print(
        f"export ANTHROPIC_BASE_URL={base}/anthropic ANTHROPIC_API_KEY=emulator-key\n"
        f"export OPENAI_BASE_URL={base}/openai/v1 OPENAI_API_KEY=emulator-key\n"
        f"# fault injection: PUT {base}/_control/faults  (see README)",
        highlight=False,
    )
    serve(host=host, port=port)


def main() -> None:
    """Entry point: run the app, turning our errors into one line."""
    try:
        app(standalone_mode=False)
    except AiosError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # a click usage error or a bug: still one line
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        err_console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", highlight=False, soft_wrap=True)
        if os.environ.get("AIOS_DEBUG"):
            raise
        sys.exit(3)


if __name__ == "__main__":
    main()

