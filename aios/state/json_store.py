"""Embedded default backend: one JSON file, safe for concurrent threads and processes.

Every read-modify-write holds a ``filelock.FileLock`` next to the file
(``<file>.lock``) and replaces the file atomically (temp file in the same
directory, fsync, ``os.replace``, fsync of the directory), so readers never see
a half-written file and concurrent writers never lose an update.

File layout::

    {"format": "aios-state/1",
     "tables": {"<table>": {"<key>": {"version": 1, "updated_at": "...", "data": {...}}}}}

A file that is not exactly this (another format, extra keys, a truncated or
non-UTF-8 file) is refused with one line naming it and is never rewritten:
we only write over a file we read back in full as ours.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from aios.files import atomic_write_text

from .base import (
    Record,
    StateError,
    Store,
    check_version,
    matches,
    parse_time,
    utcnow,
    validate_data,
    validate_key,
    validate_table,
)

FORMAT = "aios-state/1"
_ROW_FIELDS = {"version", "updated_at", "data"}


# Per state file, the last content this process read back in full as ours (or wrote itself): the same
# bytes again need no second check. Any other byte (another writer, a user's edit) is checked in full.
_ACCEPTED: dict[Path, bytes] = {}


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads keeps the last of two equal keys; rewriting would silently drop the first."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _is_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_time(value)
    except (ValueError, TypeError):
        return False
    return True


class JsonStore(Store):
    backend = "json"

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self._lock = FileLock(str(self.path) + ".lock", timeout=lock_timeout)
        self._tlock = threading.RLock()

    # -- file access ------------------------------------------------------------------
    def _load(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The tables, read back in full -- or a StateError: a file we cannot read as ours is never rewritten."""
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read state file: {exc.strerror or exc}") from None
        try:
            raw = blob.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StateError(
                f"{self.path}: corrupt state file (not UTF-8 at byte {exc.start}; truncated?); "
                "nothing was written; fix or move it away"
            ) from None
        if not raw.strip():
            return {}
        if _ACCEPTED.get(self.path) == blob:  # the very bytes checked in full before (or written by us)
            return json.loads(raw)["tables"]
        try:
            doc = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise StateError(
                f"{self.path}: corrupt state file (invalid JSON at line {exc.lineno} column "
                f"{exc.colno}: {exc.msg}); nothing was written; fix or move it away"
            ) from None
        except _DuplicateKey as exc:
            return self._refuse(f"key {exc.args[0]!r} appears twice in one object")
        if not isinstance(doc, dict):
            return self._refuse(f"expected a JSON object, found {type(doc).__name__}")
        if doc.get("format") != FORMAT:
            return self._refuse(f"'format' is {doc.get('format')!r}, expected {FORMAT!r}")
        tables = doc.get("tables")
        if not isinstance(tables, dict):
            return self._refuse("no 'tables' object")
        extra = sorted(set(doc) - {"format", "tables"})
        if extra:
            return self._refuse(f"unexpected top-level key(s) {', '.join(map(repr, extra))}")
        for name, rows in tables.items():
            if not isinstance(rows, dict):
                return self._refuse(f"table {name!r} is not an object")
            for key, row in rows.items():
                if (
                    not isinstance(row, dict)
                    or set(row) != _ROW_FIELDS
                    or type(row["version"]) is not int
                    or row["version"] < 1
                    or not isinstance(row["data"], dict)
                    or not _is_time(row["updated_at"])
                ):
                    return self._refuse(f"table {name!r} key {key!r} is malformed")
        _ACCEPTED[self.path] = blob
        return tables

    def _refuse(self, problem: str) -> Any:
        raise StateError(
            f"{self.path}: not an aios state file ({problem}); "
            "nothing was written; fix or move it away"
        )

    def _save(self, tables: dict[str, dict[str, dict[str, Any]]]) -> None:
        tables = {t: rows for t, rows in tables.items() if rows}
        text = json.dumps({"format": FORMAT, "tables": tables}, indent=1, sort_keys=True) + "\n"
        try:
            atomic_write_text(self.path, text, new_file_mode=0o600)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write state file: {exc.strerror or exc}") from None
        _ACCEPTED[self.path] = text.encode("utf-8")

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
            check_version(self.where, table, key, expected_version, actual)
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
            check_version(self.where, table, key, expected_version, None if current is None else current["version"])
            if current is None:
                return False
            del rows[key]
            self._save(tables)
        return True
