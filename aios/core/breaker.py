"""A circuit breaker per (provider, model), its state kept in a `BreakerStore` every process can share.

Closed: calls go through. After `failure_threshold` consecutive unhealthy failures it opens and
calls skip the target at once. After `cooldown` seconds it half-opens: one trial call goes
through (claimed atomically in the store, so one process takes it, not all); success closes it,
failure opens it again. A trial claim lapses after `trial_lease` seconds (its process may be gone).

The breaker logic is pure; where the state lives is the store's business: `MemoryBreakerStore`
(one process) here, a lock-protected file or Redis in `aios.outage.breaker_store`. The clock is
wall time, so processes agree on when a circuit opened.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from aios.core.policy import BreakerPolicy

R = TypeVar("R")


class BreakerState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class BreakerRecord(BaseModel):
    """What every process knows about one target."""

    model_config = ConfigDict(frozen=True)

    failures: int = 0
    opened_at: float | None = None
    trial_owner: str | None = None  # the claim of the process running the half-open trial
    trial_until: float = 0.0


CLOSED = BreakerRecord()

Change = Callable[[BreakerRecord], tuple[BreakerRecord, R]]


class BreakerStore(Protocol):
    """Where breaker records live. `update` is atomic across everyone sharing the store."""

    def read(self, key: str) -> BreakerRecord: ...

    def update(self, key: str, change: Change[R]) -> R:
        """Apply `change` to the key's record atomically; write only when the record changed."""
        ...

    def records(self) -> dict[str, BreakerRecord]: ...

    def clear(self) -> None: ...


class MemoryBreakerStore:
    """Records of one process (tests, and the fallback when a shared store is unreachable)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, BreakerRecord] = {}

    def read(self, key: str) -> BreakerRecord:
        return self._records.get(key, CLOSED)

    def update(self, key: str, change: Change[R]) -> R:
        with self._lock:
            record, result = change(self._records.get(key, CLOSED))
            self._records[key] = record
            return result

    def records(self) -> dict[str, BreakerRecord]:
        with self._lock:
            return dict(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


def state_of(record: BreakerRecord, policy: BreakerPolicy, now: float) -> BreakerState:
    if record.opened_at is None:
        return BreakerState.closed
    if now - record.opened_at >= policy.cooldown:
        return BreakerState.half_open
    return BreakerState.open


class CircuitBreaker:
    """One target's breaker as seen from this process: the record is in the store, the claim is ours."""

    def __init__(
        self,
        key: str,
        policy: BreakerPolicy,
        store: BreakerStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.policy = policy
        self.store = store if store is not None else MemoryBreakerStore()
        self._clock = clock
        self._claim = uuid.uuid4().hex  # identifies this process's trial claims

    @property
    def state(self) -> BreakerState:
        return state_of(self.store.read(self.key), self.policy, self._clock())

    def allow(self) -> bool:
        """May a call go to this target now? Closed: a read, no write. Half-open: one claimed trial."""
        now = self._clock()
        state = state_of(self.store.read(self.key), self.policy, now)
        if state is BreakerState.closed:
            return True
        if state is BreakerState.open:
            return False

        def claim(record: BreakerRecord) -> tuple[BreakerRecord, bool]:
            if state_of(record, self.policy, now) is BreakerState.closed:
                return record, True
            if state_of(record, self.policy, now) is BreakerState.open or record.trial_until > now:
                return record, False
            return record.model_copy(update={"trial_owner": self._claim, "trial_until": now + self.policy.trial_lease}), True

        return self.store.update(self.key, claim)

    def record_success(self) -> None:
        if self.store.read(self.key) == CLOSED:
            return  # the healthy path writes nothing
        self.store.update(self.key, lambda record: (CLOSED, None))

    def record_failure(self) -> None:
        now = self._clock()

        def fail(record: BreakerRecord) -> tuple[BreakerRecord, None]:
            failures = record.failures + 1
            opens = record.opened_at is not None or failures >= self.policy.failure_threshold
            return BreakerRecord(failures=failures, opened_at=now if opens else None), None

        self.store.update(self.key, fail)

    def release(self) -> None:
        """End a call that said nothing about health (our own bad request, a cancelled hedge)."""
        if self.store.read(self.key).trial_owner != self._claim:
            return

        def drop_claim(record: BreakerRecord) -> tuple[BreakerRecord, None]:
            if record.trial_owner != self._claim:
                return record, None
            return record.model_copy(update={"trial_owner": None, "trial_until": 0.0}), None

        self.store.update(self.key, drop_claim)

    def trip(self) -> None:
        """Open at once (e.g. the status checks say the target is down)."""
        now = self._clock()
        self.store.update(
            self.key,
            lambda record: (
                BreakerRecord(failures=max(record.failures, self.policy.failure_threshold), opened_at=now),
                None,
            ),
        )


class BreakerBoard:
    """The breakers of every target, over one store (per process by default, shared when given one)."""

    def __init__(
        self,
        policy: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.time,
        store: BreakerStore | None = None,
    ) -> None:
        self.policy = policy or BreakerPolicy()
        self.store = store if store is not None else MemoryBreakerStore()
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, key: str) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = self._breakers[key] = CircuitBreaker(key, self.policy, self.store, self._clock)
            return breaker

    def states(self) -> dict[str, BreakerState]:
        """Every target this process used or any process recorded."""
        now = self._clock()
        records = self.store.records()
        with self._lock:
            keys = set(self._breakers) | set(records)
        return {key: state_of(records.get(key, CLOSED), self.policy, now) for key in sorted(keys)}

    def reset(self) -> None:
        """Forget every breaker, in this process and in the store it shares."""
        with self._lock:
            self._breakers.clear()
        self.store.clear()
