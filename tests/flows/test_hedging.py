"""Hedged requests through the real SDKs and the emulators' `hang` and `slow` faults (real Prefect server)."""

from __future__ import annotations

import pytest

from aios.config.runtime import get_runtime
from aios.core.failures import ErrorClass
from aios.core.fallback import Outcome
from aios.runs.record import RunStatus, SkillRun
from flows.skill_flow import build_skill_flow

pytestmark = pytest.mark.e2e

OPUS = "claude-opus-5-5"


async def run_flow(name: str, inputs: dict | None = None) -> SkillRun:
    state = await build_skill_flow(name)(inputs=inputs, return_state=True)
    return SkillRun.model_validate(await state.result(raise_on_failure=False))


def calls(emulator, provider: str) -> list[str]:
    return [r["model"] for r in emulator.requests() if r["provider"] == provider]


async def test_critical_skill_answers_from_openai_while_claude_hangs_and_the_claude_call_is_cancelled(
    emulator, settings_env
):
    settings_env(AIOS_HEDGE_AFTER=0.3, AIOS_READ_TIMEOUT=120)
    emulator.set_fault("anthropic", "hang")
    run = await run_flow("research-lead")
    assert run.status is RunStatus.completed and run.provider == "openai"
    tried = sorted((a.provider, a.model, a.outcome, a.hedge) for a in run.attempts)
    assert tried == [("anthropic", OPUS, Outcome.hedge_cancelled, False), ("openai", "gpt-5.5", Outcome.ok, True)]
    assert calls(emulator, "anthropic") == [OPUS], "the hedge went to OpenAI, not to a second Claude model"
    lost = next(a for a in run.attempts if a.provider == "anthropic")
    assert lost.unhealthy and lost.error_class is ErrorClass.timeout, "not a byte came back: a timeout for health"
    breaker = get_runtime().breakers.get(f"anthropic:{OPUS}")
    assert breaker.store.read(breaker.key).failures == 1, "the silent Claude call counts toward its breaker"


async def test_the_openai_hedge_is_cancelled_when_claude_answers_first(emulator, settings_env):
    settings_env(AIOS_HEDGE_AFTER=0.3)
    emulator.set_fault("anthropic", "slow", delay=1.5)
    emulator.set_fault("openai", "hang")
    run = await run_flow("research-lead")
    assert (run.provider, run.model) == ("anthropic", OPUS)
    tried = sorted((a.provider, a.outcome, a.hedge) for a in run.attempts)
    assert tried == [("anthropic", Outcome.ok, False), ("openai", Outcome.hedge_cancelled, True)]
    assert len(calls(emulator, "openai")) == 1, "the hedge was started"


@pytest.mark.parametrize("skill", ["weekly-report", "daily-news"])
async def test_defer_and_drop_skills_wait_for_a_slow_claude_and_never_hedge(emulator, settings_env, skill):
    settings_env(AIOS_HEDGE_AFTER=0.1)
    emulator.set_fault("anthropic", "slow", delay=1.0)
    run = await run_flow(skill)
    assert run.status is RunStatus.completed and run.provider == "anthropic"
    assert [a.outcome for a in run.attempts] == [Outcome.ok] and not run.attempts[0].hedge
    assert calls(emulator, "openai") == []
