"""The zombie-run automation: a skill run whose process died stops sending heartbeats; Prefect marks it Crashed.

Prefect 3 flow runs emit `prefect.flow-run.heartbeat` every `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` seconds
(180 by default, 30 at least). This proactive trigger expects, after each heartbeat, the next one or a
terminal state within `window`; when neither comes the run is set to Crashed (Prefect's guide "How to
detect and respond to zombie flows"). The status-check flow then submits each crashed run again
(aios/outage/recovery.py). Only skill runs are watched: their flow runs carry a `triage:*` tag.
"""

from __future__ import annotations

from datetime import timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from aios.outage.recovery import SILENCE

NAME = "aios: crash zombie skill runs"
TERMINAL_EVENTS = {f"prefect.flow-run.{s}" for s in ("Completed", "Failed", "Cancelled", "Crashed")}


def zombie_automation(window: timedelta) -> AutomationCore:
    return AutomationCore(
        name=NAME,
        description="Marks a skill run Crashed when its heartbeats stop (its worker or process was killed).",
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.triage:*"},
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *TERMINAL_EVENTS},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=window,
        ),
        # recovery.resubmit_crashed knows a crash for silence by this message, and confirms it before resubmitting
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message=f"{SILENCE}: its process or worker died")],
    )


async def install_zombie_automation(heartbeat_seconds: int) -> str:
    """Create the automation, or bring the existing one in line (idempotent: one automation of this name)."""
    wanted = zombie_automation(timedelta(seconds=3 * max(heartbeat_seconds, 30)))
    async with get_client() as client:
        existing = await client.read_automations_by_name(NAME)
        for extra in existing[1:]:
            await client.delete_automation(extra.id)
        if existing:
            await client.update_automation(existing[0].id, wanted)
            return "updated"
        await client.create_automation(wanted)
        return "created"
