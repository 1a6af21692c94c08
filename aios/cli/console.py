"""CLI plumbing shared by every `aios` sub-command: consoles, the --json flag, one-line failures,
and the entry point that turns any error into one line and an exit code."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from aios.errors import AiosError

console = Console()
err_console = Console(stderr=True)

# `-h` as well as `--help`, for every command and sub-command (click hands it down to children).
CONTEXT_SETTINGS = {"help_option_names": ["--help", "-h"]}

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit (2: the user's input is wrong; 1: a check failed)."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run(app: typer.Typer) -> None:
    """Run a Typer app; our errors become one line (exit 2), never a traceback (AIOS_DEBUG=1 shows it).

    Usage errors (an unknown option, a missing argument) read as every CLI's do: usage, hint, error, exit 2.
    """
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except AiosError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except typer.TyperException as exc:  # click's usage errors (typer ships its own click)
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            err_console.print(f"Error: {escape(exc.format_message())}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug: still one line
        if (where := _unreachable_server(exc)) is not None:
            err_console.print(
                f"[red]error:[/red] cannot reach the Prefect server at {escape(where)}: start it, or point PREFECT_API_URL at one",
                highlight=False, soft_wrap=True,
            )
            sys.exit(1)
        err_console.print(f"[red]error:[/red] {type(exc).__name__}: {escape(str(exc))}", highlight=False, soft_wrap=True)
        if os.environ.get("AIOS_DEBUG"):
            raise
        sys.exit(3)


def _unreachable_server(exc: BaseException) -> str | None:
    """The Prefect API URL when `exc` is (or wraps) a failed connection to it, else None."""
    import httpx

    if not any(isinstance(e, httpx.TransportError) for e in (exc, exc.__cause__, exc.__context__)):
        return None
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or "(PREFECT_API_URL is not set)"
