"""Hedged requests: race the primary provider against the next one once the primary is late.

`race(primary, hedge, after)` starts `primary()` at once and `hedge()` after `after` seconds, or
at once when the primary gives up before then. The first one to return an answer (not None) wins;
the other is cancelled (its connection closes with its task). Asyncio only: what a lane does is
the caller's business (`fallback.run_chain` walks part of the chain in each).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

Lane = Callable[[], Awaitable[T | None]]


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
