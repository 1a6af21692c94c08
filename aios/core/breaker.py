"""A circuit breaker per (provider, model), shared by every run in the process.

Closed: calls go through. After `failure_threshold` consecutive unhealthy failures it opens and
calls skip the target at once. After `cooldown` seconds it half-opens: one trial call goes
through; success closes it, failure opens it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum

from aios.core.policy import BreakerPolicy


class BreakerState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state()

    def _state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.closed
        if self._clock() - self._opened_at >= self.policy.cooldown:
            return BreakerState.half_open
        return BreakerState.open

    def allow(self) -> bool:
        """May a call go to this target now? In half-open, only one trial at a time."""
        with self._lock:
            state = self._state()
            if state is BreakerState.closed:
                return True
            if state is BreakerState.half_open and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_in_flight = False
            if self._opened_at is not None or self._failures >= self.policy.failure_threshold:
                self._opened_at = self._clock()

    def release(self) -> None:
        """End a call that said nothing about health (e.g. our own bad request)."""
        with self._lock:
            self._trial_in_flight = False

    def trip(self) -> None:
        """Open at once (e.g. the status checks say the target is down)."""
        with self._lock:
            self._failures = max(self._failures, self.policy.failure_threshold)
            self._opened_at = self._clock()


class BreakerBoard:
    """All breakers of a process, keyed by target key."""

    def __init__(self, policy: BreakerPolicy | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, key: str) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = self._breakers[key] = CircuitBreaker(self.policy, self._clock)
            return breaker

    def states(self) -> dict[str, BreakerState]:
        with self._lock:
            items = list(self._breakers.items())
        return {key: b.state for key, b in items}

    def reset(self) -> None:
        with self._lock:
            self._breakers.clear()
