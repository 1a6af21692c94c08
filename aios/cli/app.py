"""The `aios` typer app: every command group registered in one place. Every user error is one line
on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import typer

from aios.cli import deploy, drill, emulate, portability, run, server, state, status, validate
from aios.cli.console import CONTEXT_SETTINGS
from aios.cli.console import run as run_app

app = typer.Typer(
    name="aios",
    help="A model-agnostic AI operating system on Prefect: skills keep running when Claude is down.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT_SETTINGS,
)

app.command("skills")(run.skills_command)
app.command("run")(run.run_command)
app.command("emulate")(emulate.emulate_command)
app.command("deploy")(deploy.deploy_command)
app.command("status")(status.status_command)
app.command("deferred")(status.deferred_command)
app.command("resume")(status.resume_command)
app.command("drain")(status.drain_command)
app.command("drill")(drill.drill_command)
app.add_typer(portability.sync_app, name="sync", help="Keep Claude Code and Codex configured alike (MCP, instructions).")
app.command("export")(portability.export_command)
app.command("memory")(portability.memory_command)
app.add_typer(state.state_app, name="state", help="State store: pending journal writes, replay.")
app.command("validate")(validate.validate_command)
app.command("doctor")(validate.doctor_command)
app.add_typer(server.server_app, name="server", help="The project's kept Prefect server: start, stop, status.")


def main() -> None:
    """Entry point of the `aios` command."""
    run_app(app)
