"""Provider failures as plain data, and the pure function that decides what each one means.

Adapters translate SDK exceptions into `ProviderFailure`; `classify` turns a failure into a
`Verdict` the fallback loop acts on. Nothing here knows about HTTP libraries or Prefect.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class FailureKind(StrEnum):
    """How a call failed, as seen from the wire."""

    status = "status"  # the API answered with an error status
    connect_refused = "connect_refused"
    dns = "dns"
    connect_timeout = "connect_timeout"
    read_timeout = "read_timeout"
    stream_cut = "stream_cut"  # the connection closed mid-answer
    malformed_response = "malformed_response"  # the HTTP body was not the API's JSON
    invalid_answer = "invalid_answer"  # well-formed answer that breaks the output contract
    missing_key = "missing_key"
    circuit_open = "circuit_open"


class ErrorClass(StrEnum):
    """What a failure says about the target (recorded on every attempt)."""

    overloaded = "overloaded"
    server_error = "server_error"
    unreachable = "unreachable"
    timeout = "timeout"
    stream_cut = "stream_cut"
    rate_limited = "rate_limited"
    auth = "auth"
    not_found = "not_found"
    bad_request = "bad_request"
    context_length = "context_length"
    malformed_response = "malformed_response"
    invalid_answer = "invalid_answer"
    missing_key = "missing_key"
    circuit_open = "circuit_open"


class Action(StrEnum):
    failover = "failover"  # move to the next target
    wait_and_retry = "wait_and_retry"  # wait out a short retry-after, same target
    reask = "reask"  # ask the same target again, with the validation error
    fail_fast = "fail_fast"  # our bug: stop the chain, call nobody else


class ProviderFailure(Exception):
    """One failed call to one target, normalised across SDKs (like httpx's typed exceptions)."""

    def __init__(
        self,
        message: str,
        *,
        kind: FailureKind,
        status: int | None = None,
        error_type: str | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.error_type = error_type
        self.retry_after = retry_after
        self.request_id = request_id
        self.target = target

    def __str__(self) -> str:
        where = f"{self.target}: " if self.target else ""
        code = f"{self.status} " if self.status else ""
        return f"{where}{code}{self.kind.value}: {self.message}"


class Verdict(BaseModel):
    """What to do about a failure, and what it says about the target's health."""

    model_config = ConfigDict(frozen=True)

    error_class: ErrorClass
    action: Action
    wait: float = 0.0
    misconfigured: bool = False  # 401/403/404/missing key: the target needs a human
    unhealthy: bool = False  # counts against the target's circuit breaker


_CONTEXT_LENGTH = re.compile(
    r"context[_ ]length|context window|prompt is too long|too many tokens|maximum context|input is too long",
    re.IGNORECASE,
)


def is_context_length(failure: ProviderFailure) -> bool:
    if failure.status == 413:
        return True
    return failure.status == 400 and bool(
        _CONTEXT_LENGTH.search(failure.message) or _CONTEXT_LENGTH.search(failure.error_type or "")
    )


def classify(failure: ProviderFailure, *, max_retry_after: float) -> Verdict:
    """The failure table. Pure: same failure and bound, same verdict."""
    kind = failure.kind
    if kind is FailureKind.status:
        return _classify_status(failure, max_retry_after)
    return _BY_KIND[kind]


_BY_KIND: dict[FailureKind, Verdict] = {
    FailureKind.connect_refused: Verdict(error_class=ErrorClass.unreachable, action=Action.failover, unhealthy=True),
    FailureKind.dns: Verdict(error_class=ErrorClass.unreachable, action=Action.failover, unhealthy=True),
    FailureKind.connect_timeout: Verdict(error_class=ErrorClass.timeout, action=Action.failover, unhealthy=True),
    FailureKind.read_timeout: Verdict(error_class=ErrorClass.timeout, action=Action.failover, unhealthy=True),
    FailureKind.stream_cut: Verdict(error_class=ErrorClass.stream_cut, action=Action.failover, unhealthy=True),
    FailureKind.malformed_response: Verdict(
        error_class=ErrorClass.malformed_response, action=Action.failover, unhealthy=True
    ),
    FailureKind.invalid_answer: Verdict(error_class=ErrorClass.invalid_answer, action=Action.reask),
    FailureKind.missing_key: Verdict(error_class=ErrorClass.missing_key, action=Action.failover, misconfigured=True),
    FailureKind.circuit_open: Verdict(error_class=ErrorClass.circuit_open, action=Action.failover),
}


def _classify_status(failure: ProviderFailure, max_retry_after: float) -> Verdict:
    status = failure.status or 0
    if status == 529:
        return Verdict(error_class=ErrorClass.overloaded, action=Action.failover, unhealthy=True)
    if status == 429:
        wait = failure.retry_after
        if wait is not None and 0 <= wait <= max_retry_after:
            return Verdict(error_class=ErrorClass.rate_limited, action=Action.wait_and_retry, wait=wait)
        return Verdict(error_class=ErrorClass.rate_limited, action=Action.failover, unhealthy=True)
    if status in (401, 403):
        return Verdict(error_class=ErrorClass.auth, action=Action.failover, misconfigured=True, unhealthy=True)
    if status == 404:
        # The model name is unknown to this endpoint: a configuration problem of this target only.
        return Verdict(error_class=ErrorClass.not_found, action=Action.failover, misconfigured=True)
    if is_context_length(failure):
        return Verdict(error_class=ErrorClass.context_length, action=Action.failover)
    if status in (408, 409) or status >= 500:
        return Verdict(error_class=ErrorClass.server_error, action=Action.failover, unhealthy=True)
    # 400 and other 4xx: the request itself is wrong, so every other target would refuse it too.
    return Verdict(error_class=ErrorClass.bad_request, action=Action.fail_fast)
