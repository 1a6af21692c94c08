"""The fallback loop, driven by scripted targets (no SDK, no server)."""

import pytest

from aios.core.breaker import BreakerBoard
from aios.core.contract import contract_validator
from aios.core.failures import ErrorClass, FailureKind, ProviderFailure
from aios.core.fallback import AllTargetsFailed, ChainAborted, Outcome, Reply, run_chain
from aios.core.policy import BreakerPolicy, FallbackPolicy, Target

OPUS = Target(provider="anthropic", model="opus")
SONNET = Target(provider="anthropic", model="sonnet")
GPT = Target(provider="openai", model="gpt", context_window=400_000)
SCHEMA = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}
GOOD = Reply(content='{"ok": true}')
validate = contract_validator(SCHEMA)


def fail(code=None, kind=FailureKind.status, message="boom", retry_after=None):
    return ProviderFailure(message, kind=kind, status=code, retry_after=retry_after)


class Script:
    """Each target answers from its own list of replies/failures, in order; records every call."""

    def __init__(self, **by_model):
        self.by_model = {k: list(v) for k, v in by_model.items()}
        self.calls = []

    async def __call__(self, target, feedback):
        self.calls.append((target.model, feedback))
        outcome = self.by_model[target.model].pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def policy(*targets, **kw):
    return FallbackPolicy(targets=targets, **kw)


async def test_primary_answers_when_healthy():
    script = Script(opus=[GOOD])
    result = await run_chain(policy(OPUS, GPT), script, validate, BreakerBoard())
    assert (result.answer.provider, result.answer.model, result.answer.output) == ("anthropic", "opus", {"ok": True})
    assert [a.outcome for a in result.attempts] == [Outcome.ok]


async def test_overloaded_primary_fails_over_and_records_both_attempts():
    script = Script(opus=[fail(529)], gpt=[GOOD])
    result = await run_chain(policy(OPUS, GPT), script, validate, BreakerBoard())
    assert result.answer.provider == "openai"
    assert [(a.model, a.outcome, a.error_class) for a in result.attempts] == [
        ("opus", Outcome.failed, ErrorClass.overloaded),
        ("gpt", Outcome.ok, None),
    ]


async def test_model_outage_moves_to_next_model_of_same_provider_first():
    script = Script(opus=[fail(500)], sonnet=[GOOD], gpt=[GOOD])
    result = await run_chain(policy(OPUS, SONNET, GPT), script, validate, BreakerBoard())
    assert result.answer.model == "sonnet"
    assert [c[0] for c in script.calls] == ["opus", "sonnet"]


async def test_bad_request_fails_fast_without_calling_anyone_else():
    script = Script(opus=[fail(400)], gpt=[GOOD])
    with pytest.raises(ChainAborted) as info:
        await run_chain(policy(OPUS, GPT), script, validate, BreakerBoard())
    assert [c[0] for c in script.calls] == ["opus"]
    assert info.value.attempts[0].error_class is ErrorClass.bad_request


async def test_context_length_skips_targets_whose_window_is_no_larger():
    script = Script(opus=[fail(400, message="prompt is too long: 300000 tokens > 200000 maximum")], gpt=[GOOD])
    result = await run_chain(policy(OPUS, SONNET, GPT), script, validate, BreakerBoard())
    assert result.answer.model == "gpt"
    assert [(a.model, a.outcome) for a in result.attempts] == [
        ("opus", Outcome.failed), ("sonnet", Outcome.skipped), ("gpt", Outcome.ok),
    ]


async def test_invalid_answer_gets_one_reask_with_the_problem_then_fails_over():
    bad = Reply(content='{"ok": "yes"}')
    script = Script(opus=[bad, bad], gpt=[GOOD])
    result = await run_chain(policy(OPUS, GPT, reasks=1), script, validate, BreakerBoard())
    assert result.answer.model == "gpt"
    assert [c[0] for c in script.calls] == ["opus", "opus", "gpt"]
    assert script.calls[1][1] and "ok" in script.calls[1][1], "the re-ask carries the validation problem"


async def test_short_rate_limit_is_waited_out_on_the_same_target():
    slept = []

    async def sleep(seconds):
        slept.append(seconds)

    script = Script(opus=[fail(429, retry_after=0.5), GOOD])
    result = await run_chain(policy(OPUS, GPT, max_retry_after=1.0), script, validate, BreakerBoard(), sleep=sleep)
    assert result.answer.model == "opus" and slept == [0.5]


async def test_open_breaker_skips_the_dead_target_without_calling_it():
    board = BreakerBoard(BreakerPolicy(failure_threshold=1, cooldown=60))
    first = Script(opus=[fail(529)], gpt=[GOOD])
    await run_chain(policy(OPUS, GPT), first, validate, board)
    second = Script(opus=[], gpt=[GOOD])
    result = await run_chain(policy(OPUS, GPT), second, validate, board)
    assert [c[0] for c in second.calls] == ["gpt"]
    assert result.attempts[0].outcome is Outcome.skipped
    assert result.attempts[0].error_class is ErrorClass.circuit_open


async def test_all_targets_failing_raises_one_group_of_every_error():
    script = Script(opus=[fail(529)], gpt=[fail(kind=FailureKind.connect_refused)])
    with pytest.raises(AllTargetsFailed) as info:
        await run_chain(policy(OPUS, GPT), script, validate, BreakerBoard())
    group = info.value
    assert isinstance(group, ExceptionGroup)
    assert [e.target for e in group.exceptions] == ["anthropic:opus", "openai:gpt"]
    assert len(group.attempts) == 2


async def test_auth_failure_marks_the_target_misconfigured():
    script = Script(opus=[fail(401)], gpt=[GOOD])
    result = await run_chain(policy(OPUS, GPT), script, validate, BreakerBoard())
    assert result.misconfigured == ["anthropic:opus"]
