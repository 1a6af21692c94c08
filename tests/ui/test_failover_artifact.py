"""The `<skill>-run` artifact names every target it did not call and why, and shows no table when no call was made."""

from __future__ import annotations

import pytest

from aios.core.failures import ErrorClass
from aios.core.fallback import Attempt, Outcome
from aios.core.triage import Triage
from aios.runs.recorder import run_markdown
from aios.runs.record import RunStatus, SkillRun


def test_targets_skipped_by_the_snapshot_and_by_an_open_breaker_are_named_with_the_reason():
    run = SkillRun(
        run_id="r1", skill="research-lead", triage=Triage.critical, status=RunStatus.completed,
        provider="openai", model="gpt-5.5", reason="2 target(s) down, skipped",
        skipped={"anthropic:claude-opus-4-7": "health snapshot says down"},
        attempts=[
            Attempt(provider="anthropic", model="claude-sonnet-4-6", outcome=Outcome.skipped,
                    error_class=ErrorClass.circuit_open, message="circuit open"),
            Attempt(provider="openai", model="gpt-5.5", outcome=Outcome.ok, ms=812),
        ],
    )
    text = run_markdown(run)
    assert "- `anthropic:claude-opus-4-7`: health snapshot says down" in text
    assert "- `anthropic:claude-sonnet-4-6`: circuit breaker open" in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| # | target") and len(table) == 2, table  # header + the one call made
    assert "openai:gpt-5.5 | ok" in table[1]


def test_a_run_with_no_attempts_has_no_table_and_no_stray_line():
    run = SkillRun(
        run_id="r2", skill="daily-news", triage=Triage.drop, status=RunStatus.dropped,
        reason="anthropic is down", skipped={"anthropic:claude-sonnet-4-6": "health snapshot says down"},
    )
    text = run_markdown(run)
    assert "|" not in text and "\n.\n" not in text and not text.endswith("\n"), text
    assert "- `anthropic:claude-sonnet-4-6`: health snapshot says down" in text
    assert "\n\n\n" not in text, repr(text)


@pytest.mark.e2e
async def test_a_failover_run_records_and_shows_which_targets_the_health_snapshot_ruled_out(stack, emulator):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from aios.core.health import Health, HealthSnapshot
    from aios.outage import health_store
    from aios.config.runtime import get_runtime
    from aios.skills.loader import find_skill
    from flows.skill_flow import build_skill_flow

    policy = get_runtime().settings.skill_policy(find_skill(get_runtime().settings.skills_dir, "research-lead"))
    claude = [t.key for t in policy.targets if t.provider == "anthropic"]
    assert claude, policy
    health_store.write_snapshot(HealthSnapshot(providers={"anthropic": Health.down}))
    try:
        state = await build_skill_flow("research-lead")(return_state=True)
        run = SkillRun.model_validate(await state.result(raise_on_failure=False))
    finally:
        health_store.forget_health()
    assert run.provider == "openai", run.summary()
    assert run.skipped == {key: "health snapshot says down" for key in claude}
    async with get_client() as client:
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["research-lead-run"])))
    text = next(a.data for a in artifacts if str(a.flow_run_id) == run.run_id)
    for key in claude:
        assert f"`{key}`: health snapshot says down" in text, text
