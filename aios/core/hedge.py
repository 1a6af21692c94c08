"""Hedged requests: race the primary provider against the next one once the primary is late.

`race(primary, hedge, after)` starts `primary()` at once and `hedge()` after `after` seconds, or
at once when the primary gives up before then. The first one to return an answer (not None) wins;
the other is cancelled (its connection closes with its task). Asyncio only: what a lane does is
the caller's business (`fallback.run_chain` walks part of the chain in each).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

Lane = Callable[[], Awaitable[T | None]]


_RESPONSE_STARTED: ContextVar[list[bool] | None] = ContextVar("aios_response_started", default=None)


def response_started() -> None:
    """Adapters call this when the target's response begins (its status line arrived): the target is alive.

    The fallback loop gives each call its own marker, so this only tells the call it runs in.
    """
    marker = _RESPONSE_STARTED.get()
    if marker is not None:
        marker[0] = True


@contextlib.contextmanager
def tracking_response() -> Iterator[list[bool]]:
    """A fresh marker for one call in this context: `marker[0]` turns True when its response begins."""
    marker = [False]
    token = _RESPONSE_STARTED.set(marker)
    try:
        yield marker
    finally:
        _RESPONSE_STARTED.reset(token)


def outraced_without_answer(was_hedge: bool, response_began: bool) -> bool:
    """Does a lane cancelled because the other lane won count as a failure (a timeout) of its target?

    Yes for the primary when not a byte of its response had come by the time the hedge answered: it
    failed to answer within `hedge_after` plus the hedge's own time (a black hole, a dead host), and
    its breaker and health should learn that as they would from a timeout. No for a primary that had
    begun answering (merely slow), and never for the hedge: it lost to a healthy primary.
    """
    return not was_hedge and not response_began


class LatencyWindow:
    """The last `size` answer times (seconds) of each target in this process, for `HedgePolicy.hedge_after`."""

    def __init__(self, size: int = 50) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def record(self, key: str, seconds: float) -> None:
        with self._lock:
            self._seen.setdefault(key, deque(maxlen=self.size)).append(seconds)

    def recent(self, key: str) -> list[float]:
        with self._lock:
            return list(self._seen.get(key, ()))


async def race(
    primary: Lane[T],
    hedge: Lane[T],
    after: float,
    *,
    on_hedge: Callable[[], None] = lambda: None,
    cancel: Callable[[asyncio.Task], None] = lambda task: task.cancel(),
) -> T | None:
    """The first answer of two lanes; `hedge` starts after `after` s, or when `primary` ends without one.

    `on_hedge` is called when the hedge starts while the primary is still running. `cancel` ends
    the losing lane (the caller marks it first, so the lane can record why it stopped). An
    exception in a lane (other than the cancellation we caused) ends the race and cancels the other.
    """
    first: asyncio.Task = asyncio.ensure_future(primary())
    second: asyncio.Task | None = None
    try:
        done, _ = await asyncio.wait({first}, timeout=after)
        if not done:
            on_hedge()
            second = asyncio.ensure_future(hedge())
        while True:
            if first.done():
                answer = first.result()
                if answer is not None:
                    return answer
                if second is None:
                    second = asyncio.ensure_future(hedge())
            if second is not None and second.done():
                answer = second.result()
                if answer is not None or first.done():
                    return answer
            running = {t for t in (first, second) if t is not None and not t.done()}
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    finally:
        losers = [t for t in (first, second) if t is not None and not t.done()]
        for task in losers:
            cancel(task)
        if losers:
            await asyncio.gather(*losers, return_exceptions=True)
