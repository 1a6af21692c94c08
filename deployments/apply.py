"""Apply prefect.yaml to a Prefect server: the work pool `aios` and its queues, then `prefect deploy --all`,
and the automation that sends health changes to a notification block (AIOS_NOTIFY_BLOCK)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from pydantic_settings import BaseSettings, SettingsConfigDict

from aios.errors import AiosError, ConfigError

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


class NotifySettings(BaseSettings):
    """Where health changes go as Prefect notifications (`AIOS_NOTIFY_*`), besides or instead of Apprise URLs."""

    model_config = SettingsConfigDict(env_prefix="AIOS_NOTIFY_", extra="ignore")

    #: a notification block on the Prefect server as "<block-type-slug>/<block-name>",
    #: e.g. "custom-webhook/ops-alerts" or "slack-webhook/ops"
    block: str | None = None


AUTOMATION = "aios: provider health → notification"
AUTOMATION_TAG = "aios"
HEALTH_EVENTS = {"aios.health.down", "aios.health.recovered"}


async def ensure_notify_automation(settings: NotifySettings | None = None) -> UUID | None:
    """The automation turning `aios.health.down`/`recovered` events into a message through AIOS_NOTIFY_BLOCK.

    Re-running updates the one automation of that name (duplicates from earlier runs are removed); without
    the setting, ours is removed, so the setting alone decides whether Prefect notifies.
    """
    settings = settings or NotifySettings()
    async with get_client() as client:
        ours = [a for a in await client.read_automations_by_name(AUTOMATION) if AUTOMATION_TAG in a.tags]
        if not settings.block:
            for automation in ours:
                await client.delete_automation(automation.id)
            return None
        automation = notify_automation(await notify_block_id(client, settings.block))
        if not ours:
            return await client.create_automation(automation)
        keep, *extra = ours
        await client.update_automation(keep.id, automation)
        for duplicate in extra:
            await client.delete_automation(duplicate.id)
        return keep.id


async def notify_block_id(client, reference: str) -> UUID:
    """The id of the block named by AIOS_NOTIFY_BLOCK, or one line saying what is wrong with it."""
    slug, sep, name = reference.partition("/")
    if not sep or not slug or not name:
        raise ConfigError("AIOS_NOTIFY_BLOCK", f"'{reference}' is not <block-type-slug>/<block-name>, e.g. custom-webhook/ops-alerts")
    try:
        document = await client.read_block_document_by_name(name, block_type_slug=slug)
    except ObjectNotFound:
        raise ConfigError(
            "AIOS_NOTIFY_BLOCK", f"the Prefect server has no '{slug}' block named '{name}' (create it under Blocks in the UI)"
        ) from None
    return document.id


def notify_automation(block_document_id: UUID) -> AutomationCore:
    """One reactive trigger per health event; the message says who changed, from what to what, and why."""
    return AutomationCore(
        name=AUTOMATION,
        description="Sent by `aios deploy` (AIOS_NOTIFY_BLOCK): a provider or model went down or recovered.",
        tags=[AUTOMATION_TAG],
        trigger=EventTrigger(
            expect=HEALTH_EVENTS,
            match={"prefect.resource.id": "aios.target.*"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id,
                subject="aios: {{ event.resource['prefect.resource.name'] }}",
                body="{{ event.resource['prefect.resource.name'] }}: {{ event.resource['aios.health.reason'] }}"
                " ({{ event.event }} at {{ event.occurred }})",
            )
        ],
    )
