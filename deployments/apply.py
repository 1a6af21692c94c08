"""Apply prefect.yaml to a Prefect server: the work pool `aios` and its queues, then `prefect deploy --all`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from aios.errors import AiosError

QUEUES = {"default": 1, "health": 2, "deferred": 3}  # name -> priority


async def ensure_pool(pool: str = "aios", deferred_queue: str = "deferred") -> None:
    """Create the process work pool and its queues if missing (idempotent)."""
    async with get_client() as client:
        try:
            await client.read_work_pool(pool)
        except ObjectNotFound:
            try:
                await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            except ObjectAlreadyExists:
                pass
        for name, priority in QUEUES.items():
            name = deferred_queue if name == "deferred" else name
            try:
                await client.read_work_queue_by_name(name, work_pool_name=pool)
            except ObjectNotFound:
                try:
                    await client.create_work_queue(name=name, work_pool_name=pool, priority=priority)
                except ObjectAlreadyExists:
                    pass


async def install_automations() -> None:
    """The zombie-run automation, sized to this environment's heartbeat frequency (idempotent)."""
    from prefect.settings import get_current_settings

    from deployments.automation import install_zombie_automation

    await install_zombie_automation(get_current_settings().flows.heartbeat_frequency or 180)


def deploy_all(root: Path) -> str:
    """Run `prefect deploy --all` from the project root (the workers load flows from there)."""
    proc = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=root,
        env={**os.environ, "PREFECT_CLI_PROMPT": "false"},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise AiosError("prefect deploy failed: " + " | ".join(tail))
    return proc.stdout
