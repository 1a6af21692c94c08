"""`aios emulate`: the local emulators on one port."""

from __future__ import annotations

from typing import Annotated

import typer

from aios.cli.console import console, err_console


def emulate_command(
    port: Annotated[int, typer.Option(help="Port for all emulators.")] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless --allow-remote).")] = "127.0.0.1",
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-loopback --host (the /_control routes stay loopback-only).")
    ] = False,
) -> None:
    """Start the local emulators (Anthropic, OpenAI, status pages, Sheets, Airtable) on one port."""
    from aios.emulators.server import check_bind, serve

    warning = check_bind(host, allow_remote)  # a refused host is one line, before anything is printed
    if warning:
        err_console.print(warning, highlight=False, soft_wrap=True)
    base = f"http://{host}:{port}"
    # Plain print, not the console: a wrapped line would split an `export` a user copies and pastes.
    print(
        f"export ANTHROPIC_BASE_URL={base}/anthropic ANTHROPIC_API_KEY=emulator-key\n"
        f"export OPENAI_BASE_URL={base}/openai/v1 OPENAI_API_KEY=emulator-key\n"
        f"# fault injection: PUT {base}/_control/faults  (see README)",
        flush=True,
    )
    serve(host=host, port=port, allow_remote=allow_remote)
