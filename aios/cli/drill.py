"""`aios drill`: a simulated Claude outage on a private stack, checked scenario by scenario."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Annotated

import typer

from aios.cli.console import JsonFlag, console, err_console, fail
from aios.config.settings import get_settings


def drill_command(
    scenarios: Annotated[list[str], typer.Option("--scenario", "-s", help="Repeatable; default: all.")] = [],  # noqa: B006
    live: Annotated[bool, typer.Option("--live", help="Real keys: black-hole Anthropic, answer from the real OpenAI.")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the drill's Prefect UI running afterwards (Ctrl-C to stop).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Simulate a Claude outage and prove the failover protocol works (exit 1 if any expectation fails)."""
    import logging

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from aios.config.entrypoints import FIRE_DRILL
    from aios.config.runtime import reset_runtime
    from aios.config.settings import reload_settings
    from aios.drill.runner import DRILL_ENV, stop_on_signals, wait_for_signal
    from aios.drill.samples import seed_project_samples
    from aios.drill.scenarios import SCENARIOS
    from aios.drill.stack import LocalStack

    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        fail(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if live and not (os.environ.get("ANTHROPIC_API_KEY") and os.environ.get("OPENAI_API_KEY")):
        fail("--live needs ANTHROPIC_API_KEY and OPENAI_API_KEY")
    chosen = scenarios or list(SCENARIOS)
    fire_drill = FIRE_DRILL.load()  # the project's flows, imported before the drill's stack is in the environment
    seed_project_samples()  # the sample `leads` in the project's own JSON store (existing rows untouched)
    logging.getLogger("prefect").setLevel(logging.WARNING)
    out = err_console if as_json else console
    data: dict | None = None
    with stop_on_signals():
        try:
            with out.status("starting the drill's stack (emulators, Prefect server, worker)...") as status:
                stack = LocalStack(project=get_settings().home, scheduler=False, ui=keep, emulate_llms=not live)
                try:
                    with stack:
                        status.update("deploying the skills to the drill's work pool...")
                        stack.run("deploy", timeout=300)
                        stack.start_workers(1)
                        with stack.environment(), temporary_settings(updates={PREFECT_API_URL: stack.api_url}):
                            os.environ.update(DRILL_ENV)
                            reload_settings()
                            reset_runtime()

                            def progress(name: str) -> None:
                                status.update(f"scenario [bold]{name}[/bold] ({chosen.index(name) + 1}/{len(chosen)})...")

                            data = asyncio.run(fire_drill(chosen, live, stack.emulator_url, progress))
                        reload_settings()
                        reset_runtime()
                        if keep:
                            status.stop()
                            _print_drill_verdict(data, as_json)
                            out.print(f"Prefect UI of the drill: {stack.api_url.removesuffix('/api')}  (Ctrl-C or SIGTERM stops it)")
                            wait_for_signal()
                finally:
                    stack.cleanup()  # the stack's temporary folder, after its processes stopped
        except KeyboardInterrupt:
            if data is None:
                fail("drill interrupted; its emulators, Prefect server and worker are stopped", 130)
    if not keep:
        _print_drill_verdict(data, as_json)
    if not data["passed"]:
        raise typer.Exit(1)


def _print_drill_verdict(data: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2), flush=True)
    else:
        _print_drill(data)


def _print_drill(data: dict) -> None:
    """The same Markdown the fire-drill artifact shows, rendered for the terminal."""
    from rich.markdown import Markdown

    from aios.drill.report import DrillReport

    console.print(Markdown(DrillReport.model_validate(data).markdown()))
