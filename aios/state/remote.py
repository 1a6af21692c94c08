"""Shared machinery for remote (HTTP) backends: locking, retries, version checks.

A backend implements three primitives -- :meth:`RemoteStore._fetch`,
:meth:`RemoteStore._apply` and :meth:`RemoteStore._translate` -- and inherits
the whole :class:`~aios.state.base.Store` API from here.

Optimistic concurrency on services without conditional writes (Sheets,
Airtable) is check-then-write; the check and the write happen under a
``FileLock`` per spreadsheet/base in a host-wide folder (``AIOS_STATE_LOCK_PATH``,
default ``<tmp>/aios-state-locks-<uid>``), so writers on the same machine --
threads or processes, whatever their ``AIOS_HOME`` -- never overwrite each other
silently. Writers on *different* machines are not serialized by that lock
(neither service offers compare-and-set): new keys are still safe (the server
allocates rows/records), conditional updates of one key are not; see the README.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

from .base import (
    BackendUnavailable,
    Record,
    StateError,
    Store,
    check_version,
    matches,
    utcnow,
    validate_data,
    validate_key,
    validate_table,
)
from .retry import RetryPolicy, TransientError

T = TypeVar("T")


@dataclass
class Current:
    """A stored record plus the backend's handle for it (row number, record id).

    ``extra`` holds the handles of duplicate rows/records of the same key that lost
    :func:`pick_winner`; the next write of that key removes them.
    """

    record: Record
    handle: Any = None
    extra: list[Any] = field(default_factory=list)


def pick_winner(candidates: Sequence[Current]) -> Current:
    """Resolve duplicate rows/records of one key the same way on every machine.

    Duplicates appear when two writers without a shared lock create the same new
    key, or when an append is retried after its answer was lost. Highest version
    wins, then the latest ``updated_at``; among identical stamps the first
    row/record (handles sort: row number, record id).
    """
    ordered = sorted(candidates, key=lambda c: (-c.record.version, -c.record.updated_at.timestamp(), c.handle))
    win = ordered[0]
    return Current(win.record, win.handle, [c.handle for c in ordered[1:]] + [h for c in ordered for h in c.extra])


def transport_error(exc: BaseException) -> TransientError | None:
    """The network-level failures of ``requests`` that are worth a retry (else None).

    A refused or reset connection, a timeout, a body cut mid-way (``ChunkedEncodingError``:
    full headers, half the body) and a 200 whose JSON is truncated all mean "the
    answer did not arrive" -- the request may or may not have been applied, so it
    is retried (every write is idempotent by key) and, past the bound, journaled.
    """
    import requests  # here, not on top: journal readers (doctor, `aios state pending`) skip its ~0.3 s import

    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return TransientError(type(exc).__name__)
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return TransientError("response cut short")
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return TransientError("truncated or invalid JSON in the response")
    return None


@dataclass
class Write:
    key: str
    data: dict[str, Any] | None  # None = delete
    version: int
    updated_at: datetime


@dataclass
class Req:
    key: str
    data: dict[str, Any] | None  # None = delete
    expected_version: int | None = None


@dataclass
class WritePlan:
    """What one batch will write, what each request returns, and the rows it read first."""

    writes: list[Write]
    results: list[Record | bool]
    current: dict[str, Current] = field(default_factory=dict)


class PartialWrite(BackendUnavailable):
    """The backend went away in the middle of a batch; ``applied`` keys made it."""

    def __init__(self, message: str, applied: set[str]) -> None:
        super().__init__(message)
        self.applied = applied
        self.plan: WritePlan | None = None


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120]


class RemoteStore(Store):
    #: "sheets:<spreadsheet id>" / "airtable:<base id>" -- names the journal's target
    identity: str = ""
    #: the ``requests`` session the backend's client sends through (paced; closed by :meth:`close`)
    session: Any = None

    def __init__(self, policy: RetryPolicy, lock_dir: Path, *, lock_timeout: float = 120.0) -> None:
        self.policy = policy
        lock_dir.mkdir(parents=True, exist_ok=True)
        self.lock_path = lock_dir / f"{_safe_name(self.identity)}.lock"
        self._flock = FileLock(str(self.lock_path), timeout=lock_timeout)
        self._tlock = threading.RLock()

    # -- primitives every backend implements --------------------------------------------
    def _fetch(self, table: str, keys: Collection[str] | None) -> dict[str, Current]:
        """Current records of ``table`` (only ``keys`` if given; all if None). Missing table = {}."""
        raise NotImplementedError

    def _apply(self, table: str, writes: Sequence[Write], current: dict[str, Current]) -> None:
        """Write the final state of each key (distinct keys). Keeps ``current`` up to date.

        On failure part-way raise :class:`PartialWrite` with the keys that were applied.
        """
        raise NotImplementedError

    def _translate(self, exc: BaseException, what: str) -> BaseException:
        """Map a client exception to :class:`TransientError` (retry) or :class:`StateError`."""
        raise NotImplementedError

    def _ping(self) -> None:
        """One cheap request (metadata); raises like any other call."""
        raise NotImplementedError

    def probe(self) -> bool:
        """Is the backend answering? ONE attempt, no retries (used while it is known to be down)."""
        try:
            self._ping()
        except TransientError:
            return False
        except StateError:
            return True  # it answers (the real operation will report the problem)
        except Exception as exc:  # noqa: BLE001
            return not isinstance(self._translate(exc, "probe"), TransientError)
        return True

    def close(self) -> None:
        if self.session is not None:
            try:
                self.session.close()
            except Exception:  # noqa: BLE001  # pragma: no cover - closing never fails the caller
                pass

    # -- helpers ------------------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """Serialize check-then-write for this spreadsheet/base (threads and processes)."""
        with self._tlock:
            try:
                self._flock.acquire()
            except Timeout:
                raise StateError(f"{self.where}: timed out waiting for the lock {self.lock_path}") from None
            try:
                yield
            finally:
                self._flock.release()

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """One HTTP round trip with the retry policy; errors come out as StateError."""

        def attempt() -> T:
            try:
                return fn()
            except (StateError, TransientError):
                raise
            except Exception as exc:  # noqa: BLE001 - translated, never leaked raw
                raise self._translate(exc, what) from None

        try:
            return self.policy.call(attempt)
        except TransientError as exc:
            raise BackendUnavailable(
                f"{self.where}: {what}: backend unavailable after retries ({exc})"
            ) from None

    # -- the Store API ------------------------------------------------------------------
    def get(self, table: str, key: str) -> Record | None:
        validate_table(self.where, table)
        validate_key(self.where, table, key)
        cur = self._fetch(table, [key]).get(key)
        return None if cur is None else cur.record

    def list(self, table: str, where: dict[str, Any] | None = None) -> list[Record]:
        validate_table(self.where, table)
        return [c.record for c in self._fetch(table, None).values() if matches(c.record.data, where)]

    def upsert(
        self, table: str, key: str, data: dict, *, expected_version: int | None = None
    ) -> Record:
        reqs = self.prepare_upserts(table, [(key, data)], expected_version)
        out = self.execute(table, reqs, utcnow())
        assert isinstance(out[0], Record)
        return out[0]

    def upsert_many(self, table: str, items: Sequence[tuple[str, dict]]) -> list[Record]:
        reqs = self.prepare_upserts(table, items, None)
        if not reqs:
            return []
        return [r for r in self.execute(table, reqs, utcnow()) if isinstance(r, Record)]

    def delete(self, table: str, key: str, *, expected_version: int | None = None) -> bool:
        validate_table(self.where, table)
        validate_key(self.where, table, key)
        out = self.execute(table, [Req(key, None, expected_version)], utcnow())
        return bool(out[0])

    def prepare_upserts(
        self, table: str, items: Sequence[tuple[str, dict]], expected_version: int | None
    ) -> list[Req]:
        validate_table(self.where, table)
        reqs = []
        for key, data in items:
            validate_key(self.where, table, key)
            reqs.append(Req(key, validate_data(self.where, table, key, data), expected_version))
        return reqs

    def plan(
        self, table: str, reqs: Sequence[Req], now: datetime, current: dict[str, Current]
    ) -> WritePlan:
        """Check versions and compute the final write per key (no I/O)."""
        view: dict[str, Record | None] = {k: c.record for k, c in current.items()}
        final: dict[str, Write] = {}
        results: list[Record | bool] = []
        for req in reqs:
            rec = view.get(req.key)
            actual = rec.version if rec else 0
            check_version(self.where, table, req.key, req.expected_version, actual)
            if req.data is None:
                if rec is None:
                    results.append(False)
                    continue
                view[req.key] = None
                final.pop(req.key, None)
                final[req.key] = Write(req.key, None, actual + 1, now)
                results.append(True)
            else:
                new = Record(table=table, key=req.key, version=actual + 1, updated_at=now, data=req.data)
                view[req.key] = new
                final.pop(req.key, None)
                final[req.key] = Write(req.key, req.data, new.version, now)
                results.append(new)
        return WritePlan(list(final.values()), results, current)

    def execute(self, table: str, reqs: Sequence[Req], now: datetime) -> list[Record | bool]:
        """Fetch, check versions and write -- all under the lock."""
        with self.lock():
            current = self._fetch(table, sorted({r.key for r in reqs}))
            plan = self.plan(table, reqs, now, current)
            if plan.writes:
                try:
                    self._apply(table, plan.writes, current)
                except PartialWrite as exc:
                    exc.plan = plan
                    raise
                except BackendUnavailable as exc:
                    partial = PartialWrite(str(exc), set())
                    partial.plan = plan
                    raise partial from None
            return plan.results
