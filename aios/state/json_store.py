"""Embedded default backend: one JSON file, safe for concurrent threads and processes.

Every read-modify-write holds a ``filelock.FileLock`` next to the file
(``<file>.lock``) and replaces the file atomically (temp file in the same
directory, fsync, ``os.replace``, fsync of the directory), so readers never see
a half-written file and concurrent writers never lose an update.

File layout::

    {"format": "aios-state/1",
     "tables": {"<table>": {"<key>": {"version": 1, "updated_at": "...", "data": {...}}}}}
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from .base import (
    Record,
    StateError,
    Store,
    VersionConflict,
    matches,
    parse_time,
    utcnow,
    validate_data,
    validate_key,
    validate_table,
)

FORMAT = "aios-state/1"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(dfd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dfd)


class JsonStore(Store):
    backend = "json"

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self._lock = FileLock(str(self.path) + ".lock", timeout=lock_timeout)
        self._tlock = threading.RLock()

    # -- file access ------------------------------------------------------------------
    def _load(self) -> dict[str, dict[str, dict[str, Any]]]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read state file: {exc.strerror or exc}") from None
        if not raw.strip():
            return {}
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise StateError(
                f"{self.path}: corrupt state file (invalid JSON at line {exc.lineno} column "
                f"{exc.colno}: {exc.msg}); fix or move it away"
            ) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("tables", {}), dict):
            raise StateError(f"{self.path}: corrupt state file (expected an object with 'tables')")
        tables = doc.get("tables", {})
        for name, rows in tables.items():
            if not isinstance(rows, dict):
                raise StateError(f"{self.path}: corrupt state file (table {name!r} is not an object)")
            for key, row in rows.items():
                if (
                    not isinstance(row, dict)
                    or not isinstance(row.get("version"), int)
                    or not isinstance(row.get("data"), dict)
                    or "updated_at" not in row
                ):
                    raise StateError(
                        f"{self.path}: corrupt state file (table {name!r} key {key!r} is malformed)"
                    )
        return tables

    def _save(self, tables: dict[str, dict[str, dict[str, Any]]]) -> None:
        tables = {t: rows for t, rows in tables.items() if rows}
        text = json.dumps({"format": FORMAT, "tables": tables}, indent=1, sort_keys=True)
        try:
            atomic_write_text(self.path, text + "\n")
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write state file: {exc.strerror or exc}") from None

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, dict[str, Any]]]]:
        with self._tlock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._lock.acquire()
            except Timeout:
                raise StateError(f"{self.path}: timed out waiting for the lock {self._lock.lock_file}") from None
            except OSError as exc:
                raise StateError(f"{self.path}: cannot lock state file: {exc.strerror or exc}") from None
            try:
                yield self._load()
            finally:
                self._lock.release()

    def _record(self, table: str, key: str, row: dict[str, Any]) -> Record:
        try:
            return Record(
                table=table,
                key=key,
                version=row["version"],
                updated_at=parse_time(row["updated_at"]),
                data=row["data"],
            )
        except (ValueError, TypeError) as exc:
            msg = str(exc).splitlines()[0]
            raise StateError(f"{self.path}: table {table!r} key {key!r} is malformed: {msg}") from None

    # -- Store API --------------------------------------------------------------------
    def get(self, table: str, key: str) -> Record | None:
        validate_table(self.where, table)
        validate_key(self.where, table, key)
        row = self._load().get(table, {}).get(key)
        return None if row is None else self._record(table, key, row)

    def list(self, table: str, where: dict[str, Any] | None = None) -> list[Record]:
        validate_table(self.where, table)
        rows = self._load().get(table, {})
        out = [self._record(table, k, r) for k, r in rows.items()]
        return [r for r in out if matches(r.data, where)]

    def upsert(
        self, table: str, key: str, data: dict, *, expected_version: int | None = None
    ) -> Record:
        validate_table(self.where, table)
        validate_key(self.where, table, key)
        clean = validate_data(self.where, table, key, data)
        with self._locked() as tables:
            rows = tables.setdefault(table, {})
            current = rows.get(key)
            actual = None if current is None else current["version"]
            if expected_version is not None and expected_version != (actual or 0):
                raise VersionConflict(self.where, table, key, expected_version, actual)
            row = {
                "version": (actual or 0) + 1,
                "updated_at": utcnow().isoformat(),
                "data": clean,
            }
            rows[key] = row
            self._save(tables)
        return self._record(table, key, row)

    def upsert_many(self, table: str, items: Sequence[tuple[str, dict]]) -> list[Record]:
        validate_table(self.where, table)
        cleaned = []
        for key, data in items:
            validate_key(self.where, table, key)
            cleaned.append((key, validate_data(self.where, table, key, data)))
        if not cleaned:
            return []
        with self._locked() as tables:
            rows = tables.setdefault(table, {})
            now = utcnow().isoformat()
            out = []
            for key, clean in cleaned:
                current = rows.get(key)
                row = {
                    "version": (0 if current is None else current["version"]) + 1,
                    "updated_at": now,
                    "data": clean,
                }
                rows[key] = row
                out.append(self._record(table, key, row))
            self._save(tables)
        return out

    def delete(self, table: str, key: str, *, expected_version: int | None = None) -> bool:
        validate_table(self.where, table)
        validate_key(self.where, table, key)
        with self._locked() as tables:
            rows = tables.get(table, {})
            current = rows.get(key)
            actual = None if current is None else current["version"]
            if expected_version is not None and expected_version != (actual or 0):
                raise VersionConflict(self.where, table, key, expected_version, actual)
            if current is None:
                return False
            del rows[key]
            self._save(tables)
        return True
