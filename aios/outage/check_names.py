"""Readable names for status-check runs: "status-check 06:48:27 · anthropic down".

A run is named with its start time when it starts, and its hook adds what the check concluded when it
ends, so the runs list reads as a health timeline instead of random adjective-animal names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

SEPARATOR = " · "


def check_run_name() -> str:
    """The name a status-check run starts with (`flow_run_name`)."""
    return f"status-check {datetime.now(UTC):%H:%M:%S}"


def health_headline(result: dict[str, Any]) -> str:
    """What the check concluded, providers only: "anthropic down, openai degraded", or "all healthy"."""
    health = result.get("health") or {}
    bad = [f"{subject} {value}" for subject, value in sorted(health.items()) if ":" not in subject and value != "healthy"]
    return ", ".join(bad) or "all healthy"


async def name_by_outcome(flow: Any, flow_run: Any, state: Any) -> None:
    """Completion/failure hook: append the headline (or "failed") to the run's name."""
    from prefect.client.orchestration import get_client

    if state.is_completed():
        result = await state.aresult(raise_on_failure=False)
        headline = health_headline(result) if isinstance(result, dict) else "no result"
    else:
        headline = state.name.lower()
    base = flow_run.name.split(SEPARATOR, 1)[0]
    async with get_client() as client:
        await client.update_flow_run(flow_run.id, name=f"{base}{SEPARATOR}{headline}")
