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
    from aios.config.entrypoints import SKILL_FLOW
    from aios.skills.loader import parse_inputs

    if record is not None:
        raise typer.Exit(run_record(skill, record, as_json))
    given = parse_inputs(inputs)
    preflight(skill, given)
    hint_when_no_server()
    build_skill_flow = SKILL_FLOW.load()

    async def go():
        state = await build_skill_flow(skill)(inputs=given, return_state=True)
        return state, await state.result(raise_on_failure=False)

    state, data = asyncio.run(go())
    if not isinstance(data, dict):
        fail(f"{skill}: the flow ended {state.name} without a result: {state.message}")
    code = show_run(SkillRun.model_validate(data).summary(), as_json)  # the warm runner's output too
    if code:
        raise typer.Exit(code)


def run_record(skill_name: str, record: str, as_json: bool) -> int:
    """`aios run SKILL --record KEY`: one record by hand; exit code 0 only when its answer was written."""
    from aios.config.entrypoints import RECORDS_FLOW
    from aios.config.runtime import get_runtime
    from aios.errors import ConfigError
    from aios.outage.health_store import require_shared_state
    from aios.runs.record import RecordOutcome, RecordsRun
    from aios.skills.loader import find_skill

    skill = find_skill(get_runtime().settings.skills_dir, skill_name)
    if skill.metadata.source is None:
        raise ConfigError(skill.path, "--record needs a skill that works on records (set metadata.source)", "metadata.source")
    require_shared_state(get_runtime().settings)
    build_records_flow = RECORDS_FLOW.load()

    async def go() -> RecordsRun:
        state = await build_records_flow(skill_name)(record=record, return_state=True)
        return RecordsRun.model_validate(await state.result(raise_on_failure=False))

    run = asyncio.run(go())
    if as_json:
        print(json.dumps(run.model_dump(mode="json"), indent=2))
    else:
        for r in run.records:
            steps = ", ".join(f"{s} by {who}" for s, who in r.answered_by.items()) or "no step run"
            print(f"{skill_name} {r.key}: {r.outcome.value} ({steps}) {r.reason}".rstrip())
        if run.reason:
            print(f"{skill_name}: {run.reason}")
    return 0 if run.keys(RecordOutcome.written) == [record] else 1
