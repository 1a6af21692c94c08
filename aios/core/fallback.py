"""The fallback loop: try each target in order, record every attempt, raise one group of all errors.

`call(target, feedback)` is injected, so this module knows nothing of SDKs, HTTP or Prefect;
it returns a `Reply` or raises `ProviderFailure`. `validate(reply)` checks the answer against the
output contract and raises `ProviderFailure(kind=invalid_answer)` when it breaks it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from aios.core.breaker import BreakerBoard
from aios.core.failures import Action, ErrorClass, FailureKind, ProviderFailure, classify
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


Call = Callable[[Target, str | None], Awaitable[Reply]]
Validate = Callable[[Reply], dict[str, Any]]


async def run_chain(
    policy: FallbackPolicy,
    call: Call,
    validate: Validate,
    breakers: BreakerBoard,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.perf_counter,
) -> ChainResult:
    """Walk the policy's targets until one gives a valid answer."""
    attempts: list[Attempt] = []
    errors: list[ProviderFailure] = []
    misconfigured: list[str] = []
    needs_window = 0  # after a context-length error, only larger windows are worth trying

    for target in policy.targets:
        if target.context_window <= needs_window:
            attempts.append(_skip(target, ErrorClass.context_length, "context window too small"))
            continue
        breaker = breakers.get(target.key)
        if not breaker.allow():
            attempts.append(_skip(target, ErrorClass.circuit_open, "circuit open"))
            errors.append(ProviderFailure("circuit open", kind=FailureKind.circuit_open, target=target.key))
            continue

        feedback: str | None = None
        reasks = retries = 0
        while True:
            started = clock()
            try:
                reply = await call(target, feedback)
                output = validate(reply)
            except ProviderFailure as failure:
                failure.target = target.key
                verdict = classify(failure, max_retry_after=policy.max_retry_after)
                ms = (clock() - started) * 1000
                attempts.append(
                    Attempt(
                        provider=target.provider,
                        model=target.model,
                        outcome=Outcome.failed,
                        error_class=verdict.error_class,
                        ms=round(ms, 1),
                        message=failure.message[:300],
                        status=failure.status,
                        action=verdict.action,
                        unhealthy=verdict.unhealthy,
                    )
                )
                if verdict.action is Action.reask and reasks < policy.reasks:
                    reasks += 1
                    feedback = failure.message
                    continue
                if verdict.action is Action.wait_and_retry and retries < 1:
                    retries += 1
                    await sleep(verdict.wait)
                    continue
                if verdict.misconfigured:
                    misconfigured.append(target.key)
                if verdict.unhealthy:
                    breaker.record_failure()
                else:
                    breaker.release()
                if verdict.action is Action.fail_fast:
                    raise ChainAborted(failure, attempts, misconfigured) from failure
                if verdict.error_class is ErrorClass.context_length:
                    needs_window = target.context_window
                errors.append(failure)
                break
            except BaseException:
                breaker.release()
                raise
            else:
                breaker.record_success()
                ms = (clock() - started) * 1000
                attempts.append(
                    Attempt(provider=target.provider, model=target.model, outcome=Outcome.ok, ms=round(ms, 1))
                )
                answer = Answer(
                    provider=target.provider,
                    model=target.model,
                    output=output,
                    response_model=reply.response_model,
                    response_id=reply.response_id,
                    usage=reply.usage,
                )
                return ChainResult(answer=answer, attempts=attempts, misconfigured=misconfigured)

    if not errors:
        errors.append(ProviderFailure("no target could take this request", kind=FailureKind.circuit_open))
    detail = "; ".join(f"{e.target}: {e.message}" for e in errors) or "no targets"
    raise AllTargetsFailed(f"all targets failed: {detail}", errors, attempts, misconfigured)


def _skip(target: Target, error_class: ErrorClass, message: str) -> Attempt:
    return Attempt(
        provider=target.provider,
        model=target.model,
        outcome=Outcome.skipped,
        error_class=error_class,
        message=message,
        action=Action.failover,
    )
