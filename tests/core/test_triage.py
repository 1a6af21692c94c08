"""Triage decisions from a skill's class and the health snapshot."""

from aios.core.health import Health, HealthSnapshot
from aios.core.policy import FallbackPolicy, Target
from aios.core.triage import RunDecision, Triage, after_chain_failed, plan_run

OPUS = Target(provider="anthropic", model="opus")
SONNET = Target(provider="anthropic", model="sonnet")
GPT = Target(provider="openai", model="gpt")
POLICY = FallbackPolicy(targets=(OPUS, SONNET, GPT))
CLAUDE_DOWN = HealthSnapshot(providers={"anthropic": Health.down, "openai": Health.healthy})
OPUS_DOWN = HealthSnapshot(providers={"anthropic": Health.healthy}, models={"anthropic:opus": Health.down})


def test_critical_skill_skips_a_down_provider_and_runs_on_the_secondary():
    plan = plan_run(Triage.critical, POLICY, CLAUDE_DOWN)
    assert plan.decision is RunDecision.run and plan.policy.targets == (GPT,)


def test_defer_skill_is_parked_while_claude_is_down():
    assert plan_run(Triage.defer, POLICY, CLAUDE_DOWN).decision is RunDecision.defer


def test_drop_skill_is_dropped_while_claude_is_down():
    assert plan_run(Triage.drop, POLICY, CLAUDE_DOWN).decision is RunDecision.drop


def test_defer_and_drop_never_use_the_secondary_even_when_healthy():
    for triage in (Triage.defer, Triage.drop):
        plan = plan_run(triage, POLICY, HealthSnapshot())
        assert plan.decision is RunDecision.run and plan.policy.targets == (OPUS, SONNET)


def test_one_model_down_moves_critical_skills_to_the_next_claude_model():
    plan = plan_run(Triage.critical, POLICY, OPUS_DOWN)
    assert plan.policy.targets == (SONNET, GPT)


def test_defer_skill_runs_on_the_next_claude_model_when_only_one_model_is_down():
    plan = plan_run(Triage.defer, POLICY, OPUS_DOWN)
    assert plan.decision is RunDecision.run and plan.policy.targets == (SONNET,)


def test_critical_skill_still_tries_when_everything_is_reported_down():
    everything_down = HealthSnapshot(providers={"anthropic": Health.down, "openai": Health.down})
    plan = plan_run(Triage.critical, POLICY, everything_down)
    assert plan.decision is RunDecision.run and plan.policy.targets == POLICY.targets


def test_failure_during_the_run_defers_or_drops_by_class():
    assert after_chain_failed(Triage.critical) is None
    assert after_chain_failed(Triage.defer) is RunDecision.defer
    assert after_chain_failed(Triage.drop) is RunDecision.drop


CLAUDE_CODE = Target(provider="claude-code", model="sonnet")
CODEX = Target(provider="codex", model="gpt-5.5")
CLI_POLICY = FallbackPolicy(targets=(CLAUDE_CODE, CODEX))


def test_a_chain_that_starts_on_claude_code_has_claude_code_as_its_primary():
    assert CLI_POLICY.primary_provider == "claude-code"
    assert FallbackPolicy(targets=(GPT, OPUS)).primary_provider == "openai"
    assert FallbackPolicy(targets=(GPT,), primary_provider="anthropic").primary_provider == "anthropic"


def test_defer_skill_on_a_cli_only_chain_runs_on_claude_code_and_never_on_codex():
    plan = plan_run(Triage.defer, CLI_POLICY, HealthSnapshot())
    assert plan.decision is RunDecision.run and plan.policy.targets == (CLAUDE_CODE,)


def test_defer_skill_on_a_cli_only_chain_is_parked_while_claude_code_is_down():
    down = HealthSnapshot(providers={"claude-code": Health.down})
    assert plan_run(Triage.defer, CLI_POLICY, down).decision is RunDecision.defer
