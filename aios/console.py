"""CLI plumbing shared by every `aios` sub-command: consoles, the --json flag, one-line failures,
and the entry point that turns any error into one line and an exit code."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.console import Console

from aios.errors import AiosError

console = Console()
err_console = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit (2: the user's input is wrong; 1: a check failed)."""
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run(app: typer.Typer) -> None:
    """Run a Typer app; our errors become one line (exit 2), never a traceback (AIOS_DEBUG=1 shows it)."""
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except AiosError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # a click usage error, or a bug: still one line
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        err_console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", highlight=False, soft_wrap=True)
        if os.environ.get("AIOS_DEBUG"):
            raise
        sys.exit(3)
