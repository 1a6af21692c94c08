"""The failover artifact, rendered by the real Prefect UI in headless Chromium."""

from __future__ import annotations

import pytest

from aios.runs.record import SkillRun
from flows.skill_flow import build_skill_flow

from .browser import find_chromium, render

pytestmark = pytest.mark.e2e

TRACE_TEMPLATE = "http://localhost:16686/trace/{trace_id}"


async def test_the_failover_artifact_renders_in_the_prefect_ui_with_a_trace_link(emulator, otel, stack, monkeypatch, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    chromium = find_chromium()
    if chromium is None:
        pytest.fail("chromium is not installed: run scripts/system-deps (or apt-get install -y chromium)")

    monkeypatch.setenv("AIOS_TRACE_URL_TEMPLATE", TRACE_TEMPLATE)
    emulator.set_fault("anthropic", "overloaded")
    state = await build_skill_flow("research-lead")(return_state=True)
    run = SkillRun.model_validate(await state.result(raise_on_failure=False))
    assert run.provider == "openai"
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
    (artifact,) = [a for a in artifacts if a.key == "research-lead-run"]  # the run's record (results are artifacts too)
    trace_url = TRACE_TEMPLATE.format(trace_id=format(otel.span_named("skill research-lead").context.trace_id, "032x"))
    assert trace_url in artifact.data

    targets = ["anthropic:claude-opus-5-5", "anthropic:claude-sonnet-5-5", "openai:gpt-5.5"]
    ui_url = stack.api_url.removesuffix("/api")
    page = await render(
        chromium, f"{ui_url}/artifacts/artifact/{artifact.id}", api_url=stack.api_url, profile=tmp_path, until=targets
    )
    missing = [t for t in targets if not any(t in cell for cell in page.cells)]
    assert not missing, f"the attempt table was not rendered (missing {missing}); the page said:\n{page.text[:1500]}"
    assert "overloaded" in page.cells, "the error class of the failed attempts is shown"
    assert trace_url in page.links, f"no link to the trace among {page.links}"
