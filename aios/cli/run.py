"""`aios skills` and `aios run`: list the skills, run one now as a Prefect flow."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.table import Table

from aios.cli.console import JsonFlag, console, err_console, fail
from aios.config.settings import get_settings


def skills_command(as_json: JsonFlag = False) -> None:
    """List the skills: name, triage, schedule, contract."""
    from aios.skills.loader import load_skills

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


def run_command(
    skill: Annotated[str, typer.Argument(help="The skill's name (its folder under skills/).")],
    inputs: Annotated[list[str], typer.Option("--input", "-i", help="key=value, repeatable.")] = [],  # noqa: B006
    as_json: JsonFlag = False,
    record: Annotated[str | None, typer.Option("--record", help="Run a records skill on this one record (its key), resuming at its first unfinished step.")] = None,
) -> None:
    """Run one skill now as a Prefect flow; exit 0 only when it produced a valid output.

    Settings, skill, inputs, context budget and state store are checked before the flow starts,
    so a mistake there costs no model call.
    """
    from aios.runs.record import SkillRun
    from aios.runs.runner import show_run
    from aios.config.runtime import preflight
    from aios.cli.server import hint_when_no_server
    from aios.skills.loader import parse_inputs
    from flows.skill_flow import build_skill_flow

    if record is not None:
        from flows.records import run_record_command

        raise typer.Exit(run_record_command(skill, record, as_json))
    given = parse_inputs(inputs)
    preflight(skill, given)
    hint_when_no_server()

    async def go():
        state = await build_skill_flow(skill)(inputs=given, return_state=True)
        return state, await state.result(raise_on_failure=False)

    state, data = asyncio.run(go())
    if not isinstance(data, dict):
        fail(f"{skill}: the flow ended {state.name} without a result: {state.message}")
    code = show_run(SkillRun.model_validate(data).summary(), as_json)  # the warm runner's output too
    if code:
        raise typer.Exit(code)


