"""Where circuit breakers live so every process reads them: a locked file on one host, or Redis.

A Prefect process worker starts a new process per run; with breakers in process memory every run
paid for the dead target again. These stores hold `BreakerRecord`s outside the process, cost no
Sheets/Airtable quota, and answer a read in well under 5 ms:

- `FileBreakerStore` (the default): one JSON file, `<home>/.aios/breakers.json`. Reads take no
  lock (writes replace the file atomically); updates hold an exclusive `flock` on a side file.
- `RedisBreakerStore` (`AIOS_BREAKER_REDIS_URL`): one key per target, updated in a WATCH/MULTI
  transaction, so a half-open trial is claimed by one process on any host.

If a store cannot be reached the run does not fail: `Resilient` logs one line and keeps the
breakers in process memory until the store answers again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from aios.core.breaker import CLOSED, BreakerRecord, BreakerStore, Change, MemoryBreakerStore

R = TypeVar("R")
log = logging.getLogger("aios.breakers")

REDIS_PREFIX = "aios:breaker:"
RETRY_SHARED_AFTER = 30.0  # seconds in process memory before a failed shared store is tried again


class BreakerStoreError(Exception):
    """The shared store could not be read or written."""


class FileBreakerStore:
    """Breaker records in one JSON file shared by the processes of one host."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def read(self, key: str) -> BreakerRecord:
        return self._load().get(key, CLOSED)

    def update(self, key: str, change: Change[R]) -> R:
        with self._locked():
            records = self._load()
            before = records.get(key, CLOSED)
            after, result = change(before)
            if after != before:
                records[key] = after
                self._write(records)
            return result

    def records(self) -> dict[str, BreakerRecord]:
        return self._load()

    def clear(self) -> None:
        with self._locked():
            if self.path.exists():
                self._write({})

    @contextlib.contextmanager
    def _locked(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise BreakerStoreError(f"{self.lock_path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _load(self) -> dict[str, BreakerRecord]:
        try:
            raw = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise BreakerStoreError(f"{self.path}: {exc.strerror}") from None
        except ValueError:
            return {}  # not ours to trust: soft state, rewritten whole by the next update
        if not isinstance(raw, dict):
            return {}
        records = {}
        for key, value in raw.items():
            with contextlib.suppress(ValidationError):
                records[key] = BreakerRecord.model_validate(value)
        return records

    def _write(self, records: dict[str, BreakerRecord]) -> None:
        data = json.dumps({k: v.model_dump() for k, v in records.items()}).encode()
        try:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, self.path)  # readers see the old file or the new one, never half of one
        except OSError as exc:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)
            raise BreakerStoreError(f"{self.path}: {exc.strerror}") from None


class RedisBreakerStore:
    """Breaker records in Redis, one key per target, shared by every process that can reach it."""

    def __init__(self, url: str, prefix: str = REDIS_PREFIX, timeout: float = 0.25) -> None:
        import redis

        self.prefix = prefix
        self._errors = (redis.RedisError,)
        self._watch_error = redis.WatchError
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)

    def read(self, key: str) -> BreakerRecord:
        try:
            return _record(self.client.get(self.prefix + key))
        except self._errors as exc:
            raise BreakerStoreError(f"redis: {exc}") from None

    def update(self, key: str, change: Change[R]) -> R:
        name = self.prefix + key
        try:
            with self.client.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(name)
                        before = _record(pipe.get(name))
                        after, result = change(before)
                        if after == before:
                            pipe.unwatch()
                            return result
                        pipe.multi()
                        pipe.set(name, after.model_dump_json())
                        pipe.execute()  # fails with WatchError if another process wrote in between
                        return result
                    except self._watch_error:
                        continue
        except self._errors as exc:
            raise BreakerStoreError(f"redis: {exc}") from None

    def records(self) -> dict[str, BreakerRecord]:
        try:
            names = list(self.client.scan_iter(match=self.prefix + "*"))
            values = self.client.mget(names) if names else []
        except self._errors as exc:
            raise BreakerStoreError(f"redis: {exc}") from None
        return {n.decode().removeprefix(self.prefix): _record(v) for n, v in zip(names, values, strict=True)}

    def clear(self) -> None:
        try:
            names = list(self.client.scan_iter(match=self.prefix + "*"))
            if names:
                self.client.delete(*names)
        except self._errors as exc:
            raise BreakerStoreError(f"redis: {exc}") from None


def _record(raw: bytes | None) -> BreakerRecord:
    if raw is None:
        return CLOSED
    try:
        return BreakerRecord.model_validate_json(raw)
    except ValidationError:
        return CLOSED


class Resilient:
    """A shared store that falls back to process memory (one warning) while it cannot be reached."""

    def __init__(self, shared: BreakerStore, name: str) -> None:
        self.shared = shared
        self.name = name
        self.local = MemoryBreakerStore()
        self._down_since: float | None = None

    def _use(self) -> BreakerStore:
        if self._down_since is not None and time.monotonic() - self._down_since < RETRY_SHARED_AFTER:
            return self.local
        return self.shared

    def _failed(self, exc: BreakerStoreError) -> None:
        if self._down_since is None:
            log.warning("breaker store %s unreachable (%s): breakers kept in this process for now", self.name, exc)
        self._down_since = time.monotonic()

    def _run(self, method: str, *args):
        store = self._use()
        try:
            result = getattr(store, method)(*args)
        except BreakerStoreError as exc:
            self._failed(exc)
            return getattr(self.local, method)(*args)
        if store is self.shared:
            self._down_since = None
        return result

    def read(self, key: str) -> BreakerRecord:
        return self._run("read", key)

    def update(self, key: str, change: Change[R]) -> R:
        return self._run("update", key, change)

    def records(self) -> dict[str, BreakerRecord]:
        return self._run("records")

    def clear(self) -> None:
        self.local.clear()
        self._run("clear")


def configured_kind(kind: str | None, redis_url: str | None) -> str:
    """`AIOS_BREAKER_STORE` if set; else redis when `AIOS_BREAKER_REDIS_URL` is set, else the local file."""
    return kind or ("redis" if redis_url else "file")


def open_breaker_store(kind: str, *, path: Path, redis_url: str | None) -> BreakerStore:
    """The store named by the settings (`AIOS_BREAKER_STORE`: file, redis or memory)."""
    if kind == "memory":
        return MemoryBreakerStore()
    if kind == "redis":
        if not redis_url:
            from aios.errors import ConfigError

            raise ConfigError("AIOS_BREAKER_REDIS_URL", "is not set, but AIOS_BREAKER_STORE=redis needs it")
        return Resilient(RedisBreakerStore(redis_url), "redis")
    return Resilient(FileBreakerStore(path), str(path))
