"""`aios deploy`: the work pool, its queues, and prefect.yaml's deployments."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from aios.cli.console import console, err_console, fail
from aios.config.settings import get_settings


def deploy_command(
    write: Annotated[bool, typer.Option("--write", help="Regenerate prefect.yaml from the skills first.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Only check prefect.yaml against the skills.")] = False,
) -> None:
    """Create the work pool `aios` (queues default, health, deferred) and deploy prefect.yaml."""
    from deployments import apply, prefect_yaml

    home = get_settings().home
    if write:
        prefect_yaml.write(home)
    problems = prefect_yaml.check(home)
    if problems:
        for line in problems:
            err_console.print(line, highlight=False)
        fail("prefect.yaml is out of step with the skills (run `aios deploy --write`)", 1)
    if check:
        console.print("prefect.yaml is in step with the skills")
        return
    settings = get_settings()
    asyncio.run(apply.ensure_pool(settings.work_pool, settings.deferred_queue))
    apply.deploy_all(home)
    asyncio.run(apply.install_automations())
    asyncio.run(apply.ensure_notify_automation())  # AIOS_NOTIFY_BLOCK: health changes as Prefect notifications
    console.print(f"deployed prefect.yaml to work pool '{settings.work_pool}'")
