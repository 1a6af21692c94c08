"""Status-check runs are named by time and conclusion ("status-check 06:48:27 · anthropic down"), so the
runs list reads as a health timeline."""

from __future__ import annotations

import re

import pytest

from aios.outage.check_names import health_headline


def test_the_headline_names_unhealthy_providers_and_leaves_models_to_the_artifact():
    assert health_headline({"health": {"anthropic": "down", "anthropic:claude-sonnet-4-6": "down", "openai": "healthy"}}) == "anthropic down"
    assert health_headline({"health": {"anthropic": "healthy", "openai": "healthy"}}) == "all healthy"
    assert health_headline({"health": {"anthropic": "degraded", "openai": "unknown"}}) == "anthropic degraded, openai unknown"


@pytest.mark.e2e
async def test_a_status_check_run_is_renamed_with_what_it_concluded(deployed, emulator):
    from prefect.client.orchestration import get_client

    from aios.drill.runner import CLAUDE_API
    from flows.status_check import status_check

    emulator.set_status("claude", components={CLAUDE_API: "major_outage"}, incidents=[
        {"name": "Elevated errors", "status": "investigating", "impact": "critical", "components": [CLAUDE_API]}
    ])
    emulator.set_fault("anthropic", "overloaded")
    state = await status_check(return_state=True)
    async with get_client() as client:
        run = await client.read_flow_run(state.state_details.flow_run_id)
    assert re.fullmatch(r"status-check \d\d:\d\d:\d\d · anthropic down", run.name), run.name
