"""The fallback loop: try each target in order, record every attempt, raise one group of all errors.

`call(target, feedback)` is injected, so this module knows nothing of SDKs, HTTP or Prefect;
it returns a `Reply` or raises `ProviderFailure`. `validate(reply)` checks the answer against the
output contract and raises `ProviderFailure(kind=invalid_answer)` when it breaks it.

Observers hook in like tenacity's `before`/`after`: `AttemptHooks.before_attempt` opens a context
around each call and its validation (a span stays open during the call), `on_attempt` hears each
settled attempt with its verdict (`classify` runs once, here), `on_skip` each target passed over.
When the policy hedges, the primary provider's targets race the rest of the chain (`core.hedge`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextvars import ContextVar
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from aios.core.breaker import BreakerBoard
from aios.core.failures import Action, ErrorClass, FailureKind, ProviderFailure, Verdict, classify
from aios.core.hedge import LatencyWindow, outraced_without_answer, race, tracking_response
from aios.core.policy import FallbackPolicy, Target


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0


class Reply(BaseModel):
    """What an adapter got back from one successful call, before validation."""

    content: Any  # the answer's JSON text, or an already-parsed object (tool input)
    response_model: str | None = None
    response_id: str | None = None
    usage: Usage = Usage()
    finish_reason: str | None = None


class Outcome(StrEnum):
    ok = "ok"
    failed = "failed"
    skipped = "skipped"
    hedge_cancelled = "hedge_cancelled"  # the other lane of a hedged race answered first


class Attempt(BaseModel):
    """One try at one target, as recorded in every run's result."""

    provider: str
    model: str
    outcome: Outcome
    error_class: ErrorClass | None = None
    ms: float = 0.0
    message: str | None = None
    status: int | None = None
    action: Action | None = None
    unhealthy: bool = False  # the verdict counts this failure against the target (breaker and health checks)
    hedge: bool = False  # started in parallel because the primary was late
    usage: Usage | None = None  # tokens of the reply, when one came back


class Answer(BaseModel):
    """The validated output and who produced it."""

    provider: str
    model: str
    output: dict[str, Any]
    response_model: str | None = None
    response_id: str | None = None
    usage: Usage = Usage()


class ChainResult(BaseModel):
    answer: Answer
    attempts: list[Attempt] = Field(default_factory=list)
    misconfigured: list[str] = Field(default_factory=list)
    hedged: bool = False  # a hedge was started while the primary was still running
    hedge_after: float | None = None  # the delay this chain would have hedged after (None: no hedge possible)


class NoAnswer(Exception):
    """Raised when a chain produced no answer (the exception; `flows.skill_flow.NoAnswerRecord` is its record as data)."""

    attempts: list[Attempt]
    misconfigured: list[str]


class AllTargetsFailed(ExceptionGroup, NoAnswer):  # type: ignore[misc]
    """Every target failed or was skipped: one group holding each target's last error."""

    def __new__(cls, message: str, errors: list[ProviderFailure], attempts: list[Attempt], misconfigured: list[str]):
        self = super().__new__(cls, message, errors)
        self.attempts = attempts
        self.misconfigured = misconfigured
        return self

    def derive(self, excs):  # keep our fields when the group is split
        return AllTargetsFailed(self.message, list(excs), self.attempts, self.misconfigured)


class ChainAborted(NoAnswer):
    """A failure no other target could fix (a bad request: our bug). Nobody else was called."""

    def __init__(self, failure: ProviderFailure, attempts: list[Attempt], misconfigured: list[str]) -> None:
        super().__init__(f"{failure.target}: request rejected ({failure.status}): {failure.message}")
        self.failure = failure
        self.attempts = attempts
        self.misconfigured = misconfigured


class DeadlinePassed(NoAnswer):
    """The policy's deadline passed: the call in flight was cut and no further target was started."""

    error_class = ErrorClass.timeout

    def __init__(self, deadline: str, attempts: list[Attempt], misconfigured: list[str]) -> None:
        super().__init__(f"deadline {deadline} passed")
        self.reason = f"deadline {deadline} passed"
        self.attempts = attempts
        self.misconfigured = misconfigured


_TIME_LEFT: ContextVar[float | None] = ContextVar("aios_time_left", default=None)


def time_left() -> float | None:
    """Seconds left before the chain's deadline, as a call starts (None: no deadline, or not in a chain).

    Adapters whose own timeout is the whole call's budget (agent CLIs) follow it.
    """
    return _TIME_LEFT.get()


class _DeadlineCut(Exception):
    """The call in flight was cut by the chain's deadline (internal: becomes DeadlinePassed)."""


Call = Callable[[Target, str | None], Awaitable[Reply]]
Validate = Callable[[Reply], dict[str, Any]]


@dataclass(frozen=True)
class AttemptStart:
    """What an observer knows as a call starts."""

    target: Target
    number: int  # this attempt's place in the run's attempt list, from 1
    feedback: str | None = None  # a re-ask carries the problem with the last answer
    failover_from: Target | None = None  # set on the first call to a later target: the one before it
    hedge: bool = False


class AttemptHooks:
    """Observers of the loop (no-ops here; telemetry overrides them). They watch; they never decide.

    `before_attempt` wraps the call and the validation of its reply; `on_attempt` is called inside
    that context with the settled attempt, its verdict (failures only) and the reply (if any).
    """

    def before_attempt(self, start: AttemptStart) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def on_attempt(self, attempt: Attempt, verdict: Verdict | None, reply: Reply | None) -> None:
        pass

    def on_skip(self, number: int, attempt: Attempt) -> None:
        pass


def _unchanged(text: str) -> str:
    return text


async def run_chain(
    policy: FallbackPolicy,
    call: Call,
    validate: Validate,
    breakers: BreakerBoard,
    *,
    hooks: AttemptHooks | None = None,
    redact: Callable[[str], str] = _unchanged,
    latencies: LatencyWindow | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.perf_counter,
) -> ChainResult:
    """Walk the policy's targets until one gives a valid answer; hedge when the policy says so.

    `redact` cleans every failure message before it reaches an attempt or an exception.
    `latencies` holds the answer times `policy.hedge` derives its delay from (and is fed here).
    `policy.deadline` bounds the whole walk on `clock`: a call still running when it passes is cut
    (the call's task is cancelled) and `DeadlinePassed` is raised without starting another target.
    """
    chain = _Chain(policy, call, validate, breakers, hooks or AttemptHooks(), redact, latencies, sleep, clock)
    split = policy.hedge_split()
    try:
        if split is None:
            answer = await chain.walk(policy.targets, _Lane())
        else:
            answer = await chain.race(policy.targets[:split], policy.targets[split:])
    except (ChainAborted, DeadlinePassed) as exc:
        exc.attempts = chain.recorded()
        raise
    if answer is not None:
        return ChainResult(
            answer=answer,
            attempts=chain.recorded(),
            misconfigured=chain.misconfigured,
            hedged=chain.hedged,
            hedge_after=chain.hedge_after,
        )
    errors = chain.errors or [ProviderFailure("no target could take this request", kind=FailureKind.circuit_open)]
    detail = "; ".join(f"{e.target}: {e.message}" for e in errors) or "no targets"
    raise AllTargetsFailed(f"all targets failed: {detail}", errors, chain.recorded(), chain.misconfigured)


@dataclass
class _Lane:
    hedge: bool = False  # started while the other lane was still running


class _Chain:
    """The state one run of the loop shares between its lanes (one lane unless it hedges)."""

    def __init__(self, policy, call, validate, breakers, hooks, redact, latencies, sleep, clock) -> None:
        self.policy: FallbackPolicy = policy
        self.call: Call = call
        self.validate: Validate = validate
        self.breakers: BreakerBoard = breakers
        self.hooks: AttemptHooks = hooks
        self.redact: Callable[[str], str] = redact
        self.latencies: LatencyWindow | None = latencies
        self.sleep = sleep
        self.clock = clock
        self.attempts: list[Attempt | None] = []  # a slot is taken when a call starts, so numbers hold in a race
        self.errors: list[ProviderFailure] = []
        self.misconfigured: list[str] = []
        self.needs_window = 0  # after a context-length error, only larger windows are worth trying
        self.called: set[str] = set()
        self.hedged = False
        self.hedge_after: float | None = None
        self.settled = False  # the race is decided: a lane cancelled now lost it
        budget = policy.budget_s
        self.ends: float | None = None if budget is None else clock() + budget

    def recorded(self) -> list[Attempt]:
        return [a for a in self.attempts if a is not None]

    def time_left(self) -> float | None:
        return None if self.ends is None else self.ends - self.clock()

    def deadline_passed(self) -> DeadlinePassed:
        return DeadlinePassed(self.policy.deadline or "", self.recorded(), self.misconfigured)

    async def call_within(self, target: Target, feedback: str | None, left: float | None) -> Reply:
        """The call, cut when the deadline passes; adapters see the time left through `time_left()`."""
        if left is None:
            return await self.call(target, feedback)
        token = _TIME_LEFT.set(left)
        scope = asyncio.timeout(left)
        try:
            async with scope:
                return await self.call(target, feedback)
        except TimeoutError:
            if scope.expired():
                raise _DeadlineCut() from None
            raise
        finally:
            _TIME_LEFT.reset(token)

    async def race(self, primary: tuple[Target, ...], rest: tuple[Target, ...]) -> Answer | None:
        recent = self.latencies.recent(primary[0].key) if self.latencies else []
        self.hedge_after = self.policy.hedge.hedge_after(recent)
        second = _Lane()

        def start_hedge() -> None:
            second.hedge = self.hedged = True

        def cancel(task: asyncio.Task) -> None:
            self.settled = True
            task.cancel()

        return await race(
            lambda: self.walk(primary, _Lane()),
            lambda: self.walk(rest, second),
            self.hedge_after,
            on_hedge=start_hedge,
            cancel=cancel,
        )

    async def walk(self, targets: tuple[Target, ...], lane: _Lane) -> Answer | None:
        for target in targets:
            answer = await self.try_target(target, lane)
            if answer is not None:
                return answer
        return None

    def skip(self, target: Target, error_class: ErrorClass, message: str) -> None:
        attempt = Attempt(
            provider=target.provider,
            model=target.model,
            outcome=Outcome.skipped,
            error_class=error_class,
            message=message,
            action=Action.failover,
        )
        self.attempts.append(attempt)
        self.hooks.on_skip(len(self.attempts), attempt)

    def failover_from(self, target: Target) -> Target | None:
        if target.key in self.called:
            return None
        self.called.add(target.key)
        position = self.policy.targets.index(target)
        return self.policy.targets[position - 1] if position > 0 else None

    async def try_target(self, target: Target, lane: _Lane) -> Answer | None:
        """One target, with its re-asks and short waits; an Answer, or None to move on."""
        if target.context_window <= self.needs_window:
            self.skip(target, ErrorClass.context_length, "context window too small")
            return None
        breaker = self.breakers.get(target.key)
        if not breaker.allow():
            self.skip(target, ErrorClass.circuit_open, "circuit open")
            self.errors.append(ProviderFailure("circuit open", kind=FailureKind.circuit_open, target=target.key))
            return None

        feedback: str | None = None
        reasks = retries = 0
        while True:
            left = self.time_left()
            if left is not None and left <= 0:
                raise self.deadline_passed()
            self.attempts.append(None)
            number = len(self.attempts)
            start = AttemptStart(target, number, feedback, self.failover_from(target), lane.hedge)
            reply: Reply | None = None
            failure: ProviderFailure | None = None
            cut = False
            started = self.clock()
            with tracking_response() as response, self.hooks.before_attempt(start):
                try:
                    reply = await self.call_within(target, feedback, left)
                    output = self.validate(reply)
                except _DeadlineCut:
                    cut = True
                    breaker.release()  # the run ran out of time; the target is not to blame
                    verdict = Verdict(error_class=ErrorClass.timeout, action=Action.failover)
                    attempt = self._report(number, verdict, reply, self._attempt(
                        target, lane, started, reply, Outcome.failed,
                        error_class=ErrorClass.timeout, message=f"deadline {self.policy.deadline} passed", action=Action.failover,
                    ))
                except ProviderFailure as exc:
                    failure = exc
                    failure.target = target.key
                    failure.message = self.redact(failure.message)
                    failure.args = (failure.message,)
                    verdict = classify(failure, max_retry_after=self.policy.max_retry_after)
                    attempt = self._report(number, verdict, reply, self._attempt(
                        target, lane, started, reply, Outcome.failed, error_class=verdict.error_class,
                        message=failure.message[:300], status=failure.status, action=verdict.action, unhealthy=verdict.unhealthy,
                    ))
                except asyncio.CancelledError:
                    if self.settled:  # the other lane won: record what this one cost
                        attempt = self._attempt(target, lane, started, reply, Outcome.hedge_cancelled)
                        verdict = None
                        if outraced_without_answer(lane.hedge, response[0]):
                            breaker.record_failure()  # it never began to answer: a timeout, for its breaker and health
                            verdict = Verdict(error_class=ErrorClass.timeout, action=Action.failover, unhealthy=True)
                            attempt = attempt.model_copy(update={
                                "error_class": ErrorClass.timeout, "action": Action.failover, "unhealthy": True,
                                "message": f"no response began within {attempt.ms / 1000:.2f} s; the hedge answered first",
                            })
                        else:
                            breaker.release()
                        self._report(number, verdict, reply, attempt)
                    else:
                        breaker.release()
                    raise
                except BaseException:
                    breaker.release()
                    raise
                else:
                    attempt = self._report(number, None, reply, self._attempt(target, lane, started, reply, Outcome.ok))
            if cut:
                raise self.deadline_passed()
            if failure is None:
                breaker.record_success()
                if self.latencies is not None:
                    self.latencies.record(target.key, attempt.ms / 1000)
                return Answer(
                    provider=target.provider,
                    model=target.model,
                    output=output,
                    response_model=reply.response_model,
                    response_id=reply.response_id,
                    usage=reply.usage,
                )

            if verdict.action is Action.reask and reasks < self.policy.reasks:
                reasks += 1
                feedback = failure.message
                continue
            if verdict.action is Action.wait_and_retry and retries < self.policy.wait_retries:
                retries += 1
                left = self.time_left()
                await self.sleep(verdict.wait if left is None else max(0.0, min(verdict.wait, left)))
                continue
            if verdict.misconfigured:
                self.misconfigured.append(target.key)
            if verdict.unhealthy:
                breaker.record_failure()
            else:
                breaker.release()
            if verdict.action is Action.fail_fast:
                raise ChainAborted(failure, self.recorded(), self.misconfigured) from failure
            if verdict.error_class is ErrorClass.context_length:
                self.needs_window = max(self.needs_window, target.context_window)
            self.errors.append(failure)
            return None

    def _attempt(
        self, target: Target, lane: _Lane, started: float, reply: Reply | None, outcome: Outcome, **failure: Any
    ) -> Attempt:
        """The attempt as it ended now; `failure` carries a failed one's class, message, status and action."""
        return Attempt(
            provider=target.provider,
            model=target.model,
            outcome=outcome,
            ms=round((self.clock() - started) * 1000, 1),
            hedge=lane.hedge,
            usage=reply.usage if reply is not None else None,
            **failure,
        )

    def _report(self, number: int, verdict: Verdict | None, reply: Reply | None, attempt: Attempt) -> Attempt:
        """Put the ended attempt in its place in the chain's list and tell the hooks."""
        self.attempts[number - 1] = attempt
        self.hooks.on_attempt(attempt, verdict, reply)
        return attempt
