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
DESCRIPTIONS = {
    "default": "Skill runs (schedules and the UI's Run button).",
    "health": "The status check (every minute), the fire drill and cross-model validation. "
    "Pausing it stops health checks, so the deferred queue is never resumed.",
    "deferred": "Runs parked while Claude is down (they show as Late, tagged waiting-for-claude). The status-check "
    "flow pauses this queue when Claude is down and resumes it when Claude is healthy again; "
    "`aios resume` resumes it by hand. Cancelling a run here loses that work.",
}


async def ensure_pool(pool: str = "aios", deferred_queue: str = "deferred") -> None:
    """Create the process work pool and its queues if missing, and (re)write what each queue is for (idempotent)."""
    async with get_client() as client:
        try:
            await client.read_work_pool(pool)
        except ObjectNotFound:
            try:
                await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            except ObjectAlreadyExists:
                pass
        for role, priority in QUEUES.items():
            name = deferred_queue if role == "deferred" else role
            try:
                queue = await client.read_work_queue_by_name(name, work_pool_name=pool)
            except ObjectNotFound:
                try:
                    await client.create_work_queue(
                        name=name, work_pool_name=pool, priority=priority, description=DESCRIPTIONS[role]
                    )
                except ObjectAlreadyExists:
                    pass
            else:
                if queue.description != DESCRIPTIONS[role]:
                    await client.update_work_queue(queue.id, description=DESCRIPTIONS[role])


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
