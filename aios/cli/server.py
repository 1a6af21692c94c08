"""`aios server start|stop|status`: the project's kept Prefect server (see aios/server.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from aios.config import kept_server as kept
from aios.cli.console import CONTEXT_SETTINGS, JsonFlag, console, err_console, fail
from aios.config.settings import get_settings

server_app = typer.Typer(no_args_is_help=True, context_settings=CONTEXT_SETTINGS)

START_HINT = "no Prefect server is up, so Prefect starts a temporary one for this command (20-30 s); `aios server start` keeps one running"


@server_app.command("start")
def start_command(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (default: a free one).")] = 0,
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="Serve the Prefect UI too.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Start a Prefect server for this project in the background (SQLite in .aios/prefect, or
    PostgreSQL when PREFECT_SERVER_DATABASE_CONNECTION_URL says so); every `aios` command then uses it,
    and a warm runner beside it runs `aios run` in under 2 s (a restart picks up a changed .env)."""
    home = get_settings().home
    try:
        server, started = kept.start(home, port=port or None, ui=ui)
    except kept.ServerError as exc:
        fail(str(exc), 1)
    if as_json:
        print(json.dumps(_describe(server, running=True, started=started)))
        return
    verb = "started" if started else "already running:"
    console.print(f"Prefect server {verb} {server.ui_url} (pid {server.pid}, {server.database}) with its warm runner "
                  f"(pid {server.runner_pid}); `aios server stop` stops both",
                  markup=False, highlight=False, soft_wrap=True)


@server_app.command("stop")
def stop_command() -> None:
    """Stop the server `aios server start` started (never another process)."""
    server, was_running = kept.stop(get_settings().home)
    if server is None:
        console.print("no kept server is recorded for this project")
    elif was_running:
        console.print(f"stopped the Prefect server at {server.ui_url} (pid {server.pid})", markup=False, highlight=False)
    else:
        console.print(f"the recorded server (pid {server.pid}) was no longer running; removed its record", markup=False, highlight=False)


@server_app.command("status")
def status_command(as_json: JsonFlag = False) -> None:
    """Whether the kept server runs and answers with its identity; exit 1 when it is not up."""
    server = kept.kept_server(get_settings().home)
    answers = server is not None and kept.identity_on_server(server) == server.identity
    if as_json:
        print(json.dumps(_describe(server, running=answers) if server else {"running": False}))
    elif server is None:
        console.print("no kept server: `aios server start` starts one")
    elif answers:
        console.print(f"up: {server.ui_url} (pid {server.pid}, {server.database}, identity {server.identity})", markup=False, highlight=False, soft_wrap=True)
        runner = f"up (pid {server.runner_pid})" if kept.runner_is_ours(server) else "not running: `aios server start` restarts it"
        console.print(f"warm runner for `aios run`: {runner}", markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(f"pid {server.pid} runs but {server.url} does not answer with its identity (still starting?)", markup=False, highlight=False)
    if not answers:
        raise typer.Exit(1)


def _describe(server: kept.KeptServer, running: bool, started: bool | None = None) -> dict:
    data = {"running": running, "url": server.url, "ui_url": server.ui_url, "pid": server.pid,
            "identity": server.identity, "database": server.database,
            "runner": {"running": kept.runner_is_ours(server), "pid": server.runner_pid, "port": server.runner_port}}
    return data | ({"started": started} if started is not None else {})


def hint_when_no_server() -> None:
    """One line on stderr when this command is about to pay for a temporary Prefect server."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        err_console.print(f"note: {START_HINT}", markup=False, highlight=False, soft_wrap=True)
