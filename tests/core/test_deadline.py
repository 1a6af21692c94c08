"""A skill's deadline bounds the whole chain: scripted targets and a scripted clock (no SDK, no server)."""

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from aios.config.settings import Settings
from aios.core.breaker import BreakerBoard
from aios.core.deadline import RunDeadline
from aios.core.contract import contract_validator
from aios.core.failures import ErrorClass, FailureKind, ProviderFailure
from aios.core.fallback import DeadlinePassed, Outcome, Reply, run_chain, time_left
from aios.core.policy import FallbackPolicy, Target
from aios.errors import ConfigError
from aios.skills.loader import load_skill

OPUS = Target(provider="anthropic", model="opus")
GPT = Target(provider="openai", model="gpt", context_window=400_000)
SCHEMA = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}
GOOD = Reply(content='{"ok": true}')
validate = contract_validator(SCHEMA)


class Clock:
    """A clock the scripted targets move forward: time passes only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bounded(*targets, deadline="10m", **kw) -> FallbackPolicy:
    return FallbackPolicy(targets=targets, deadline=deadline, hedge={"enabled": False}, **kw)


async def test_no_further_target_starts_once_the_deadline_has_passed():
    clock, called = Clock(), []

    async def call(target, feedback):
        called.append(target.model)
        clock.now += 601  # the primary took longer than the whole 10m budget, then failed
        raise ProviderFailure("overloaded", kind=FailureKind.status, status=529)

    with pytest.raises(DeadlinePassed) as caught:
        await run_chain(bounded(OPUS, GPT), call, validate, BreakerBoard(), clock=clock)
    assert called == ["opus"]
    assert str(caught.value) == caught.value.reason == "deadline 10m passed"
    assert caught.value.error_class is ErrorClass.timeout
    assert [(a.model, a.outcome, a.error_class) for a in caught.value.attempts] == [
        ("opus", Outcome.failed, ErrorClass.overloaded)
    ]


async def test_a_call_still_running_when_the_deadline_passes_is_cut():
    cancelled, called = [], []

    async def call(target, feedback):
        called.append(target.model)
        try:
            await asyncio.Event().wait()  # never answers
        except asyncio.CancelledError:
            cancelled.append(target.model)
            raise

    with pytest.raises(DeadlinePassed) as caught:
        await run_chain(bounded(OPUS, GPT, deadline="0.2s"), call, validate, BreakerBoard())
    assert called == cancelled == ["opus"]
    [attempt] = caught.value.attempts
    assert (attempt.outcome, attempt.error_class, attempt.message) == (Outcome.failed, ErrorClass.timeout,
                                                                       "deadline 0.2s passed")


async def test_a_cut_call_does_not_count_against_the_targets_breaker():
    async def call(target, feedback):
        await asyncio.Event().wait()

    board = BreakerBoard()
    for _ in range(4):
        with pytest.raises(DeadlinePassed):
            await run_chain(bounded(OPUS, deadline="0.05s"), call, validate, board)
    assert board.get(OPUS.key).allow()


async def test_each_call_sees_the_time_left_in_the_deadline():
    clock, seen = Clock(), []

    async def call(target, feedback):
        seen.append((target.model, time_left()))
        clock.now += 100
        if target.model == "opus":
            raise ProviderFailure("overloaded", kind=FailureKind.status, status=529)
        return GOOD

    result = await run_chain(bounded(OPUS, GPT), call, validate, BreakerBoard(), clock=clock)
    assert result.answer.model == "gpt"
    assert seen == [("opus", 600), ("gpt", 500)]


async def test_without_a_deadline_calls_see_no_time_left_and_the_chain_is_unbounded():
    clock, seen = Clock(), []

    async def call(target, feedback):
        seen.append(time_left())
        clock.now += 10_000
        if target.model == "opus":
            raise ProviderFailure("overloaded", kind=FailureKind.status, status=529)
        return GOOD

    result = await run_chain(bounded(OPUS, GPT, deadline=None), call, validate, BreakerBoard(), clock=clock)
    assert result.answer.model == "gpt" and seen == [None, None]


async def test_a_retry_after_wait_never_sleeps_past_the_deadline():
    clock, slept = Clock(), []

    async def sleep(seconds):
        slept.append(seconds)
        clock.now += seconds

    async def call(target, feedback):
        clock.now += 59.5  # 0.5 s of the 1m budget left when the 429 asks for 2 s
        raise ProviderFailure("slow down", kind=FailureKind.status, status=429, retry_after=2.0)

    with pytest.raises(DeadlinePassed):
        await run_chain(bounded(OPUS, GPT, deadline="1m", max_retry_after=5.0), call, validate, BreakerBoard(),
                        sleep=sleep, clock=clock)
    assert slept == [0.5]


def test_a_policy_refuses_a_deadline_that_is_not_a_duration():
    with pytest.raises(ValidationError, match="not a duration like 90s, 10m or 1h30m"):
        FallbackPolicy(targets=(OPUS,), deadline="soon")
    assert FallbackPolicy(targets=(OPUS,), deadline="1h30m").deadline_s == 5400


# ------------------------------------------------- the skill's metadata.deadline
def _skill(root: Path, deadline: str) -> Path:
    folder = root / "skills" / "quick-check"
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text(
        f'---\nname: quick-check\ndescription: Checks quickly.\nmetadata:\n  deadline: "{deadline}"\n---\nCheck.\n'
    )
    (folder / "output.schema.json").write_text('{"type": "object"}')
    return folder


def test_a_skills_deadline_bounds_its_policy(tmp_path):
    skill = load_skill(_skill(tmp_path, "10m"))
    assert skill.metadata.deadline == "10m"
    policy = Settings(targets="anthropic:claude-opus-5-5,claude-code:sonnet").skill_policy(skill)
    assert (policy.deadline, policy.deadline_s) == ("10m", 600)


def test_a_bad_deadline_is_one_line_naming_the_skill_file_and_field(tmp_path):
    folder = _skill(tmp_path, "ten minutes")
    with pytest.raises(ConfigError) as caught:
        load_skill(folder)
    assert str(caught.value) == (
        f"{folder / 'SKILL.md'}: metadata.deadline: 'ten minutes' is not a duration like 90s, 10m or 1h30m"
    )


# ------------------------------------------- the whole run: answer, then memory extraction
async def test_the_answers_chain_gets_only_what_the_run_has_left():
    clock, seen = Clock(), []
    run = RunDeadline("10m", clock)
    clock.now += 100  # reading records, the health snapshot: the run's own time counts

    async def call(target, feedback):
        seen.append(time_left())
        clock.now += 550  # an agent CLI that took its time, then failed
        raise ProviderFailure("overloaded", kind=FailureKind.status, status=529)

    with pytest.raises(DeadlinePassed) as caught:
        await run_chain(run.bound(bounded(OPUS, GPT)), call, validate, BreakerBoard(), clock=clock)
    assert seen == [500]
    assert str(caught.value) == "deadline 10m passed", "the message names the deadline as written"
    assert [a.model for a in caught.value.attempts] == ["opus"], "the 50 s left were not enough to start gpt"


async def test_a_chain_started_after_the_deadline_calls_nobody():
    clock, called = Clock(), []
    run = RunDeadline("1m", clock)
    clock.now += 61

    async def call(target, feedback):
        called.append(target)
        return GOOD

    with pytest.raises(DeadlinePassed) as caught:
        await run_chain(run.bound(bounded(OPUS, GPT)), call, validate, BreakerBoard(), clock=clock)
    assert called == [] and caught.value.attempts == []


async def test_memory_extraction_gets_what_the_answer_left_and_is_cut_when_that_runs_out():
    clock = Clock()
    run = RunDeadline("10m", clock)
    policy = bounded(OPUS, GPT)

    async def slow_answer(target, feedback):
        clock.now += 599.8
        return GOOD

    result = await run_chain(run.bound(policy), slow_answer, validate, BreakerBoard(), clock=clock)
    memory_policy, skipped = run.after_answer(policy)
    assert result.answer.output == {"ok": True} and skipped is None
    assert memory_policy.budget_s == pytest.approx(0.2), "not a fresh 10 minutes"

    called = []

    async def never(target, feedback):
        called.append(target.model)
        await asyncio.Event().wait()

    with pytest.raises(DeadlinePassed) as caught:
        await asyncio.wait_for(run_chain(memory_policy, never, validate, BreakerBoard(), clock=clock), 30)
    assert called == ["opus"] and str(caught.value) == "deadline 10m passed"


def test_memory_extraction_is_skipped_with_a_reason_when_the_answer_used_the_whole_deadline():
    clock = Clock()
    run = RunDeadline("10m", clock)
    clock.now += 600
    assert run.after_answer(bounded(OPUS)) == (None, "skipped: deadline 10m passed with the answer")


def test_a_run_without_a_deadline_leaves_every_chain_unbounded():
    clock = Clock()
    run = RunDeadline(None, clock)
    clock.now += 10_000
    policy = bounded(OPUS, deadline=None)
    assert run.left() is None and run.bound(policy) is policy
    assert run.after_answer(policy) == (policy, None) and policy.budget_s is None


def test_a_skills_deadline_counts_from_the_start_of_its_run(tmp_path):
    skill = load_skill(_skill(tmp_path, "90s"))
    clock = Clock()
    run = RunDeadline(skill.metadata.deadline, clock)
    clock.now += 30
    policy = run.bound(Settings(targets="claude-code:sonnet,codex:gpt-5.5").skill_policy(skill))
    assert (policy.deadline, policy.budget_s) == ("90s", 60)
