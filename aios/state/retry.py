"""Retry policy (a value) for remote state backends, built on tenacity.

Retries 429, 5xx and connection errors; honours ``Retry-After``; exponential
backoff with jitter otherwise; bounded both by attempts and total seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)

from aios.core.retry_after import parse_retry_after

T = TypeVar("T")


class TransientError(Exception):
    """Raised by a backend for a retryable failure (429, 5xx, connection error)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial: float = 0.5
    max_delay: float = 8.0
    max_total: float = 30.0  # seconds; never sleep past this bound
    jitter: float = 0.5  # up to +jitter*delay random extra

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if retry_after is not None and retry_after >= 0:
            # The server told us; add a little jitter so writers don't stampede.
            return retry_after + random.uniform(0, self.jitter * min(retry_after, 1.0))
        base = min(self.max_delay, self.initial * (2 ** (attempt - 1)))
        return base + random.uniform(0, self.jitter * base)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return self.delay(state.attempt_number, retry_after)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn``; retry on :class:`TransientError`; re-raise the last one when out of budget."""
        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, TransientError)),
            stop=stop_after_attempt(self.attempts) | stop_before_delay(self.max_total),
            wait=self._wait,
            reraise=True,
        )
        return retrying(fn)


def transient_status(status: int, retry_after: str | None) -> TransientError | None:
    """429 and 5xx are worth a retry (after the server's ``Retry-After``, if it sent one); None otherwise."""
    if status == 429 or status >= 500:
        return TransientError(f"HTTP {status}", retry_after=parse_retry_after(retry_after))
    return None
