"""Client-side pacing: stay under a service's published rate limits before it answers 429.

Airtable allows 5 requests per second per base (and punishes a breach with 30 s of
429s); Google Sheets allows 60 reads and 60 writes per minute per user. Reacting to
429 (retries, then the journal) is too late for a burst, so every request first takes
a slot from a :class:`Pacer`.

A pacer is keyed (``airtable:<base>``, ``sheets:<id>:write``...) and shared by the
threads of a process and the processes of a host through a small JSON file under a
``FileLock``. The rule is stricter than a plain token bucket so that network latency
cannot push a burst over the server's window: a request may *start* only while fewer
than ``limit`` requests of that key are in flight or *finished* less than ``window``
seconds ago. (A request arrives at the server after it starts and before it finishes,
so any ``limit + 1`` arrivals the server sees inside one window would have had to be
admitted with ``limit`` of them counted -- which the rule forbids.)
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

#: an in-flight slot older than this is from a process that died mid-request
STALE_AFTER = 300.0


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` requests per ``window`` seconds (``limit`` 0 = unpaced)."""

    limit: int
    window: float


class Pacer:
    """Slots for one key, shared through ``<dir>/<key>.json``."""

    def __init__(self, key: str, rate: RateLimit, directory: Path) -> None:
        self.key = key
        self.rate = rate
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / (re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:150] + ".json")
        self._flock = FileLock(str(self.path) + ".lock", timeout=60)
        self._tlock = threading.Lock()

    def _load(self) -> dict[str, list[float]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
            return {str(k): [float(v[0]), float(v[1])] for k, v in data.items()}
        except (FileNotFoundError, ValueError, TypeError, IndexError, AttributeError):
            return {}  # missing or torn: start afresh (worst case one window of extra requests)

    def _save(self, slots: dict[str, list[float]]) -> None:
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(slots), encoding="utf-8")
        os.replace(tmp, self.path)

    def _update(self, fn: Callable[[dict[str, list[float]], float], Any]) -> Any:
        with self._tlock, self._flock:
            slots = self._load()
            now = time.time()
            out = fn(slots, now)
            self._save(slots)
            return out

    def acquire(self) -> str | None:
        """Block until a request may start; return its slot id (None when unpaced)."""
        if self.rate.limit <= 0:
            return None
        slot = uuid.uuid4().hex[:12]
        window = self.rate.window

        def take(slots: dict[str, list[float]], now: float) -> float:
            # slot -> [started, finished (0 = in flight)]
            for k, (started, done) in list(slots.items()):
                if (done and done <= now - window) or (not done and started < now - STALE_AFTER):
                    del slots[k]
            if len(slots) < self.rate.limit:
                slots[slot] = [now, 0.0]
                return 0.0
            finished = [done for _, done in slots.values() if done]
            # wait until the oldest finished slot leaves the window (or poll for in-flight ones)
            return max(0.005, min(finished) + window - now) if finished else max(0.005, window / 10)

        while True:
            wait = self._update(take)
            if not wait:
                return slot
            time.sleep(min(wait, window))

    def release(self, slot: str | None) -> None:
        if slot is None:
            return

        def done(slots: dict[str, list[float]], now: float) -> None:
            if slot in slots:
                slots[slot][1] = now

        self._update(done)


class PacedAdapter(HTTPAdapter):
    """A requests adapter that takes a slot from every pacer ``pacers_for(request)`` returns."""

    def __init__(self, pacers_for: Callable[[PreparedRequest], Iterable[Pacer]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pacers_for = pacers_for

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        taken: list[tuple[Pacer, str | None]] = []
        try:
            for pacer in self._pacers_for(request):  # always in the same order: no deadlock
                taken.append((pacer, pacer.acquire()))
            return super().send(request, *args, **kwargs)
        finally:
            for pacer, slot in taken:
                pacer.release(slot)


def mount_pacing(session: Any, pacers_for: Callable[[PreparedRequest], Iterable[Pacer]]) -> None:
    """Route every http(s) request of ``session`` through :class:`PacedAdapter`."""
    adapter = PacedAdapter(pacers_for)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
