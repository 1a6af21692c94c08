"""Hedged requests and attempt hooks in the pure loop, driven by fake async calls (no SDK, no server)."""

import asyncio
import contextlib

from aios.core.breaker import BreakerBoard
from aios.core.contract import contract_validator
from aios.core.failures import ErrorClass, FailureKind, ProviderFailure
from aios.core.fallback import AllTargetsFailed, AttemptHooks, Outcome, Reply, Usage, run_chain
from aios.core.health import HealthSnapshot
from aios.core.hedge import LatencyWindow, outraced_without_answer, response_started
from aios.core.policy import BreakerPolicy, FallbackPolicy, HedgePolicy, Target
from aios.core.triage import RunDecision, Triage, plan_run

OPUS = Target(provider="anthropic", model="opus")
SONNET = Target(provider="anthropic", model="sonnet")
GPT = Target(provider="openai", model="gpt", context_window=400_000)
SCHEMA = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}
validate = contract_validator(SCHEMA)


def answer(by: str) -> Reply:
    return Reply(content='{"ok": true}', response_model=by, usage=Usage(input_tokens=7, output_tokens=3))


def hedging(*targets, after=0.01):
    return FallbackPolicy(targets=targets, hedge=HedgePolicy(after=after))


class Calls:
    """Fake targets: each model's coroutine decides when (and whether) it answers; records starts and cancels."""

    def __init__(self, **behaviour):
        self.behaviour = behaviour
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.events = {name: asyncio.Event() for name in behaviour}

    async def __call__(self, target, feedback):
        self.started.append(target.model)
        self.events[target.model].set()
        try:
            return await self.behaviour[target.model](self)
        except asyncio.CancelledError:
            self.cancelled.append(target.model)
            raise


async def hang(calls):
    await asyncio.Event().wait()


def at_once(by):
    async def reply(calls):
        return answer(by)

    return reply


def after_started(other, by):
    async def reply(calls):
        await calls.events[other].wait()
        return answer(by)

    return reply


async def test_a_hanging_primary_is_raced_by_the_next_provider_which_wins():
    calls = Calls(opus=hang, sonnet=hang, gpt=at_once("gpt"))
    result = await run_chain(hedging(OPUS, SONNET, GPT), calls, validate, BreakerBoard())
    assert result.answer.provider == "openai" and result.hedged
    assert calls.started == ["opus", "gpt"], "the hedge goes to the next provider, not to a second Claude model"
    assert calls.cancelled == ["opus"], "the losing request is cancelled"
    outcomes = {(a.model, a.outcome, a.hedge) for a in result.attempts}
    assert outcomes == {("opus", Outcome.hedge_cancelled, False), ("gpt", Outcome.ok, True)}


async def test_the_hedge_is_cancelled_and_recorded_when_the_primary_answers_first():
    calls = Calls(opus=after_started("gpt", "opus"), gpt=hang)
    result = await run_chain(hedging(OPUS, GPT), calls, validate, BreakerBoard())
    assert result.answer.model == "opus" and result.hedged
    assert calls.cancelled == ["gpt"]
    outcomes = {(a.model, a.outcome, a.hedge) for a in result.attempts}
    assert outcomes == {("opus", Outcome.ok, False), ("gpt", Outcome.hedge_cancelled, True)}
    cancelled = next(a for a in result.attempts if a.outcome is Outcome.hedge_cancelled)
    assert cancelled.usage is None, "no reply came back, so no tokens are claimed"


async def test_a_cancelled_hedge_leaves_the_breaker_as_it_was():
    board = BreakerBoard()
    calls = Calls(opus=after_started("gpt", "opus"), gpt=hang)
    await run_chain(hedging(OPUS, GPT), calls, validate, board)
    assert board.get(GPT.key).allow() and board.store.read(GPT.key).failures == 0


async def test_a_primary_outraced_before_its_response_began_counts_as_a_timeout_against_its_breaker():
    board = BreakerBoard(BreakerPolicy(failure_threshold=2, cooldown=3600))
    calls = Calls(opus=hang, gpt=at_once("gpt"))
    result = await run_chain(hedging(OPUS, GPT), calls, validate, board)
    lost = next(a for a in result.attempts if a.model == "opus")
    assert lost.outcome is Outcome.hedge_cancelled and lost.error_class is ErrorClass.timeout and lost.unhealthy
    assert board.store.read(OPUS.key).failures == 1 and board.get(GPT.key).allow()
    await run_chain(hedging(OPUS, GPT), calls, validate, board)
    assert not board.get(OPUS.key).allow(), "two black-holed runs open the primary's breaker"
    calls.started.clear()
    result = await run_chain(hedging(OPUS, GPT), calls, validate, board)
    assert calls.started == ["gpt"] and not result.hedged, "the next run skips Claude instead of waiting hedge_after"


async def test_a_primary_that_had_begun_answering_when_outraced_is_slow_not_broken():
    async def slow(calls):
        response_started()  # the status line came; the body is slow
        await asyncio.Event().wait()

    board = BreakerBoard()
    result = await run_chain(hedging(OPUS, GPT), Calls(opus=slow, gpt=at_once("gpt")), validate, board)
    lost = next(a for a in result.attempts if a.model == "opus")
    assert lost.outcome is Outcome.hedge_cancelled and not lost.unhealthy and lost.error_class is None
    assert board.store.read(OPUS.key).failures == 0


def test_only_a_primary_without_a_byte_of_response_counts_when_outraced():
    assert outraced_without_answer(was_hedge=False, response_began=False)
    assert not outraced_without_answer(was_hedge=False, response_began=True)
    assert not outraced_without_answer(was_hedge=True, response_began=False), "a hedge loses to a healthy primary"


async def test_no_hedge_starts_when_the_primary_answers_in_time():
    calls = Calls(opus=at_once("opus"), gpt=at_once("gpt"))
    result = await run_chain(hedging(OPUS, GPT, after=60), calls, validate, BreakerBoard())
    assert result.answer.model == "opus" and not result.hedged
    assert calls.started == ["opus"]


async def test_a_failing_primary_hands_over_at_once_without_waiting_for_hedge_after():
    async def overloaded(calls):
        raise ProviderFailure("overloaded", kind=FailureKind.status, status=529)

    calls = Calls(opus=overloaded, gpt=at_once("gpt"))
    result = await run_chain(hedging(OPUS, GPT, after=3600), calls, validate, BreakerBoard())
    assert result.answer.model == "gpt" and not result.hedged, "a failover, not a hedge"
    assert [a.outcome for a in result.attempts] == [Outcome.failed, Outcome.ok]


async def test_both_lanes_failing_raise_one_group_with_every_error():
    async def refused(calls):
        raise ProviderFailure("refused", kind=FailureKind.connect_refused)

    calls = Calls(opus=refused, gpt=refused)
    try:
        await run_chain(hedging(OPUS, GPT), calls, validate, BreakerBoard())
    except AllTargetsFailed as group:
        assert sorted(e.target for e in group.exceptions) == ["anthropic:opus", "openai:gpt"]
    else:
        raise AssertionError("expected AllTargetsFailed")


async def test_defer_and_drop_skills_never_hedge():
    policy = hedging(OPUS, SONNET, GPT)
    for triage in (Triage.defer, Triage.drop):
        plan = plan_run(triage, policy, HealthSnapshot())
        assert plan.decision is RunDecision.run and plan.policy.hedge_split() is None
        calls = Calls(opus=after_started("sonnet", "opus"), sonnet=at_once("sonnet"), gpt=at_once("gpt"))
        task = asyncio.ensure_future(run_chain(plan.policy, calls, validate, BreakerBoard()))
        await asyncio.sleep(0.05)  # far past hedge_after: a hedging chain would have started a call by now
        assert calls.started == ["opus"] and not task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    critical = plan_run(Triage.critical, policy, HealthSnapshot())
    assert critical.policy.hedge_split() == 2


def test_hedge_after_is_twice_the_recent_p95_within_bounds():
    rule = HedgePolicy()
    assert rule.hedge_after([0.1] * 4) == rule.max_after, "too few answers seen: no evidence, no early hedge"
    assert rule.hedge_after([0.1] * 19 + [2.0]) == 4.0
    assert rule.hedge_after([0.01] * 20) == 0.5, "never below the floor"
    assert rule.hedge_after([30.0] * 20) == 10.0, "never above the ceiling"
    assert HedgePolicy(after=1.5).hedge_after([0.01] * 20) == 1.5


async def test_answer_times_feed_the_window_the_delay_is_derived_from():
    window = LatencyWindow()
    calls = Calls(opus=at_once("opus"), gpt=at_once("gpt"))
    for _ in range(6):
        result = await run_chain(FallbackPolicy(targets=(OPUS, GPT)), calls, validate, BreakerBoard(), latencies=window)
    assert len(window.recent(OPUS.key)) == 6 and not window.recent(GPT.key)
    assert result.hedge_after == 0.5, "five fast answers seen before this run: the floor"


class Recorder(AttemptHooks):
    def __init__(self):
        self.events = []
        self.open = False

    @contextlib.contextmanager
    def before_attempt(self, start):
        self.events.append(("start", start.target.model, start.number))
        self.open = True
        try:
            yield
        finally:
            self.open = False

    def on_attempt(self, attempt, verdict, reply):
        self.events.append(("settled", attempt.model, attempt.outcome, verdict.error_class if verdict else None))

    def on_skip(self, number, attempt):
        self.events.append(("skip", attempt.model, number))


async def test_hooks_see_each_call_inside_its_context_and_each_verdict_once():
    hooks = Recorder()
    seen_open = []

    async def call(target, feedback):
        seen_open.append(hooks.open)
        if target.model == "opus":
            raise ProviderFailure("overloaded", kind=FailureKind.status, status=529)
        return answer("gpt")

    board = BreakerBoard()
    board.get(SONNET.key).trip()
    await run_chain(FallbackPolicy(targets=(OPUS, SONNET, GPT)), call, validate, board, hooks=hooks)
    assert seen_open == [True, True], "the context (a span) is open during the call"
    assert hooks.events == [
        ("start", "opus", 1),
        ("settled", "opus", Outcome.failed, ErrorClass.overloaded),
        ("skip", "sonnet", 2),
        ("start", "gpt", 3),
        ("settled", "gpt", Outcome.ok, None),
    ]


async def test_failure_messages_are_redacted_in_the_attempt_and_the_exception():
    async def echo(target, feedback):
        raise ProviderFailure("bad key sk-secret-123", kind=FailureKind.status, status=401)

    try:
        await run_chain(
            FallbackPolicy(targets=(OPUS,)), echo, validate, BreakerBoard(),
            redact=lambda text: text.replace("sk-secret-123", "[REDACTED]"),
        )
    except AllTargetsFailed as group:
        assert "sk-secret-123" not in str(group) and "[REDACTED]" in str(group)
        assert group.attempts[0].message == "bad key [REDACTED]"
        assert "sk-secret-123" not in str(group.exceptions[0])
    else:
        raise AssertionError("expected AllTargetsFailed")


async def test_the_wait_and_retry_count_is_a_policy_value():
    slept = []

    async def sleep(seconds):
        slept.append(seconds)

    async def limited(target, feedback):
        raise ProviderFailure("slow down", kind=FailureKind.status, status=429, retry_after=0.1)

    policy = FallbackPolicy(targets=(OPUS,), wait_retries=3, max_retry_after=1.0)
    try:
        await run_chain(policy, limited, validate, BreakerBoard(), sleep=sleep)
    except AllTargetsFailed:
        pass
    assert slept == [0.1, 0.1, 0.1]
