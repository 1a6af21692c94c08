"""Typer commands `validate` and `doctor`; the main CLI registers them:

    app.command("validate")(validate_command)   # aios validate [SKILL ...] [--targets ...] [--runs N] [--json]
    app.command("doctor")(doctor_command)       # aios doctor [--json]

Exit codes: 0 all good; 1 a validation cell or a doctor check failed; 2 a user error (unknown skill,
malformed --targets), printed as one line.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from aios.cli.console import JsonFlag, console, err_console, fail
from aios.errors import AiosError

STATUS_STYLE = {"ok": "green", "pass": "green", "warn": "yellow", "fail": "red", "FAIL": "red"}


def validate_command(
    skills: Annotated[
        list[str] | None, typer.Argument(help="Skills to validate (default: every skill).", show_default=False)
    ] = None,
    targets: Annotated[
        str | None,
        typer.Option(
            "--targets",
            help="provider:model, comma-separated (default: every target of each skill's policy).",
            show_default=False,
        ),
    ] = None,
    runs: Annotated[int, typer.Option("--runs", min=1, help="Runs per skill and target.")] = 2,
    tolerance: Annotated[
        float, typer.Option("--tolerance", min=0.0, help="Relative tolerance for numbers (0.1 = 10%).")
    ] = 0.1,
    as_json: JsonFlag = False,
) -> None:
    """Run skills on every target through the same model task and compare the answers; exit 1 on any failing cell."""
    from aios.config.entrypoints import VALIDATE_SKILLS
    from aios.config.runtime import check_context_and_store
    from aios.config.settings import load_settings
    from aios.validation.matrix import Matrix, parse_targets
    from aios.validation.plan import plan_validation

    settings = load_settings()  # every setting, before any model is paid for
    specs = parse_targets(targets) or None
    plan_validation(skills or None, specs)  # unknown skill, bad target, bad compare rule: one line, exit 2
    check_context_and_store(settings)
    validate_skills = VALIDATE_SKILLS.load()

    async def go():
        state = await validate_skills(skills=skills or None, targets=specs, runs=runs, tolerance=tolerance, return_state=True)
        return state, await state.result(raise_on_failure=False)

    state, data = asyncio.run(go())
    if isinstance(data, AiosError):
        raise data
    if not isinstance(data, dict):
        fail(f"validate-skills ended {state.name} without a result: {state.message}", 3)
    matrix = Matrix.model_validate(data)
    if as_json:
        print(json.dumps(matrix.to_json(), indent=2))
    else:
        _print_matrix(matrix, runs)
    if not matrix.ok:
        failed = matrix.failed()
        err_console.print(
            f"{len(failed)} of {len(matrix.cells)} cell(s) failed: "
            + ", ".join(f"{c.skill}@{c.target}" for c in failed),
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)


def _print_matrix(matrix, runs: int) -> None:
    table = Table(title=f"cross-model validation ({runs} run(s) per cell)")
    for name in ("skill", "target", "pass", "ms", "tokens in/out", "disagree"):
        table.add_column(name, no_wrap=True, justify="left" if name in ("skill", "target") else "right")
    table.add_column("detail", overflow="fold")
    for cell in matrix.cells:
        style = "green" if cell.ok else "red"
        tokens = f"{cell.tokens_in}/{cell.tokens_out}" if cell.tokens_in is not None else "-"
        latency = f"{cell.mean_latency_ms:.0f}" if cell.mean_latency_ms is not None else "-"
        table.add_row(
            cell.skill,
            cell.target,
            f"[{style}]{cell.passed}/{cell.runs}[/{style}]",
            latency,
            tokens,
            f"[{style}]{cell.disagreements}[/{style}]" if cell.disagreements else "0",
            "\n".join(cell.problems()[:4]),
        )
    console.print(table)
    verdict = "[green]all cells pass[/green]" if matrix.ok else f"[red]{len(matrix.failed())} cell(s) fail[/red]"
    console.print(verdict)


def doctor_command(as_json: JsonFlag = False) -> None:
    """Everything that would break a failover: keys, skills, validations, drift, deployments; exit 1 on any fail."""
    from aios.validation.doctor import run_doctor

    report = run_doctor()  # loads the settings itself: a bad variable is a row, not an exit
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        table = Table(title="aios doctor")
        table.add_column("check", no_wrap=True)
        table.add_column("subject", overflow="fold")
        table.add_column("status", no_wrap=True)
        table.add_column("detail", overflow="fold")
        for c in report.checks:
            style = STATUS_STYLE[c.status.value]
            table.add_row(c.check, escape(c.subject), f"[{style}]{c.status.value}[/{style}]", escape(c.detail))
        console.print(table)
        counts = report.counts()
        console.print(f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail", highlight=False)
    if not report.ok:
        raise typer.Exit(1)
