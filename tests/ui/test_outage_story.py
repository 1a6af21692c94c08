"""A Claude outage, read the way a user reads it: in the real Prefect UI, rendered by headless Chromium.

Screenshots of every page checked go to tests/ui/artifacts/ (git-ignored).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aios.drill.runner import CLAUDE_API
from aios.runs.record import SkillRun
from flows.skill_flow import build_skill_flow
from flows.status_check import status_check
from tests.conftest import flush_prefect
from tests.observability.browser import find_chromium, render

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).parent / "artifacts"


async def run_flow(name: str) -> SkillRun:
    state = await build_skill_flow(name)(return_state=True)
    return SkillRun.model_validate(await state.result(raise_on_failure=False))


def missing(wanted: list[str], places: list[str]) -> list[str]:
    return [w for w in wanted if not any(w in place for place in places)]


async def test_a_claude_outage_shows_failover_deferral_health_and_links_in_the_prefect_ui(deployed, emulator, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId

    from aios.outage import deferral

    chromium = find_chromium()
    if chromium is None:
        pytest.fail("chromium is not installed: run scripts/system-deps (or apt-get install -y chromium)")

    emulator.set_status("claude", components={CLAUDE_API: "major_outage"}, incidents=[
        {"name": "Elevated errors on the Claude API", "status": "investigating", "impact": "critical", "components": [CLAUDE_API]}
    ])
    emulator.set_fault("anthropic", "overloaded")
    parked_id = None
    try:
        check = await status_check()
        assert check["queue_paused"], f"Claude down pauses the deferred queue: {check}"
        critical = await run_flow("research-lead")
        deferred = await run_flow("weekly-report")
        assert critical.provider == "openai" and deferred.parked_run_id, (critical.summary(), deferred.summary())
        parked_id = deferred.parked_run_id
        await asyncio.to_thread(flush_prefect)  # logs reach the server before we read them

        async with get_client() as client:
            failover_run = await client.read_flow_run(critical.run_id)
            deferred_run = await client.read_flow_run(deferred.run_id)
            parked_run = await client.read_flow_run(parked_id)
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[failover_run.id])))
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[deferred_run.id])),
            )
        link_artifact = next((a for a in artifacts if (a.description or "").startswith("Deferred: parked as run")), None)
        assert {"failover", "answered-by:openai", "outcome:completed"} <= set(failover_run.tags), failover_run.tags
        assert "outcome:deferred" in deferred_run.tags, deferred_run.tags
        assert f"parked-by:{deferred_run.id}" in parked_run.tags and "waiting-for-claude" in parked_run.tags
        assert any("failover:" in log.message and "openai:gpt-5.5 answered" in log.message for log in logs), [
            log.message for log in logs
        ]

        ui = deployed.api_url.removesuffix("/api")
        api = deployed.api_url

        # the runs list: failover and deferral visible at a glance, in the names and tags
        runs = await render(
            chromium, f"{ui}/runs", api_url=api, profile=tmp_path / "runs", in_text=True,
            until=[failover_run.name, deferred_run.name, "failover", "outcome:deferred"],
            screenshot=SCREENSHOTS / "runs-list.png",
        )
        gone = missing([failover_run.name, deferred_run.name, "failover", "outcome:deferred"], [runs.text])
        assert not gone, f"the runs list does not show {gone}; it said:\n{runs.text[:2000]}"
        assert "failover to openai:gpt-5.5" in failover_run.name and "deferred" in deferred_run.name

        # the health card: one keyed artifact naming the down provider, since when
        health = await render(
            chromium, f"{ui}/artifacts/key/provider-health", api_url=api, profile=tmp_path / "health",
            until=["anthropic down since"], in_text=True, screenshot=SCREENSHOTS / "provider-health.png",
        )
        assert "anthropic down since" in health.text, f"the health card does not name the down provider:\n{health.text[:2000]}"

        # the deferred run links to its parked run, and the parked run back to it
        assert link_artifact is not None, "the deferred run has no artifact linking to its parked run"
        link = await render(
            chromium, f"{ui}/artifacts/artifact/{link_artifact.id}", api_url=api, profile=tmp_path / "link",
            until=["Parked as run"], in_text=True, screenshot=SCREENSHOTS / "deferred-link.png",
        )
        assert f"{ui}/runs/flow-run/{parked_id}" in link.links, f"no link to the parked run among {link.links}"
        parked_page = await render(
            chromium, f"{ui}/runs/flow-run/{parked_id}", api_url=api, profile=tmp_path / "parked", in_text=True,
            until=["waits for Claude"], screenshot=SCREENSHOTS / "parked-run.png",
        )
        assert "waits for Claude" in parked_page.text, parked_page.text[:2000]
    finally:
        if parked_id:
            async with get_client() as client:
                await client.delete_flow_run(parked_id)
        await deferral.set_paused(False)
