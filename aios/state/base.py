"""The state contract every backend implements.

A skill's state is a set of *tables*; each table maps a string *key* to a
:class:`Record` holding a JSON-compatible ``data`` dict plus a ``version``
(1 on create, +1 on every write) used for optimistic concurrency: pass
``expected_version`` to :meth:`Store.upsert` / :meth:`Store.delete` and the
write fails with :class:`VersionConflict` instead of silently overwriting a
write somebody else made in between.

Rules shared by all backends (so a skill can move between them):

* ``data`` values must be JSON-compatible (str, int, float, bool, list, dict).
  ``None`` means "unset": fields whose value is ``None`` are dropped.
* The field names ``key``, ``version`` and ``updated_at`` are reserved (the
  spreadsheet/table backends store them as columns next to the data fields).
* ``upsert`` *replaces* the record's data (it is not a merge).
* ``expected_version=None`` writes unconditionally; ``expected_version=0``
  means "only if the key does not exist yet"; ``n`` means "only if the stored
  version is n".
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aios.errors import AiosError

RESERVED_FIELDS = frozenset({"key", "version", "updated_at"})
_TABLE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,99}$")


class StateError(AiosError):
    """A state operation failed; the message is one line naming the file/table and the problem."""

    def __init__(self, message: str) -> None:
        # Always one line: user-facing, printed by the CLI without a traceback.
        super().__init__(" ".join(str(message).split()))


class VersionConflict(StateError):
    """``expected_version`` did not match the stored version (someone else wrote first)."""

    def __init__(
        self, where: str, table: str, key: str, expected: int | None, actual: int | None
    ) -> None:
        self.table = table
        self.key = key
        self.expected = expected
        self.actual = actual
        have = "no record" if not actual else f"version {actual}"
        want = "no record" if not expected else f"version {expected}"
        super().__init__(
            f"{where}: table {table!r} key {key!r}: version conflict: expected {want}, "
            f"found {have}"
        )


class BackendUnavailable(StateError):
    """The remote backend did not answer within the retry bound (writes get journaled)."""


class Record(BaseModel):
    """One stored row. Immutable; a write returns a new Record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    table: str = Field(min_length=1)
    key: str = Field(min_length=1)
    version: int = Field(ge=1)
    updated_at: datetime
    data: dict[str, Any]

    @field_validator("updated_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            return v.replace(tzinfo=UTC)
        return v.astimezone(UTC)

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "key": self.key,
            "version": self.version,
            "updated_at": self.updated_at.isoformat(),
            "data": self.data,
        }


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _check_json_value(value: Any, path: str) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: {value!r} is not JSON-compatible (NaN/Infinity)")
        return value
    if isinstance(value, (list, tuple)):
        return [_check_json_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{path}: key {k!r} is not a string")
            out[k] = _check_json_value(v, f"{path}.{k}")
        return out
    raise ValueError(f"{path}: {type(value).__name__} is not JSON-compatible")


def validate_table(where: str, table: Any) -> str:
    if not isinstance(table, str) or not _TABLE_RE.match(table):
        raise StateError(
            f"{where}: invalid table name {table!r} (letters, digits, space, '_', '.', '-'; "
            "max 100 chars)"
        )
    return table


def validate_key(where: str, table: str, key: Any) -> str:
    if not isinstance(key, str) or not key or key != key.strip() or "\n" in key:
        raise StateError(
            f"{where}: table {table!r}: invalid key {key!r} (non-empty string, no "
            "surrounding whitespace or newlines)"
        )
    return key


def validate_data(where: str, table: str, key: str, data: Any) -> dict[str, Any]:
    """Check ``data`` is a JSON-compatible dict; drop None fields; reject reserved names."""
    if not isinstance(data, dict):
        raise StateError(
            f"{where}: table {table!r} key {key!r}: data must be a dict, got "
            f"{type(data).__name__}"
        )
    try:
        clean = _check_json_value(data, "data")
    except ValueError as exc:
        raise StateError(f"{where}: table {table!r} key {key!r}: {exc}") from None
    out: dict[str, Any] = {}
    for field, value in clean.items():
        if field in RESERVED_FIELDS:
            raise StateError(
                f"{where}: table {table!r} key {key!r}: field name {field!r} is reserved "
                f"({', '.join(sorted(RESERVED_FIELDS))})"
            )
        if not field or field != field.strip():
            raise StateError(
                f"{where}: table {table!r} key {key!r}: invalid field name {field!r}"
            )
        if value is not None:
            out[field] = value
    # Canonical round trip so every backend stores exactly the same thing.
    return json.loads(json.dumps(out))


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True != 1 and "1" != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def matches(data: dict[str, Any], where: dict[str, Any] | None) -> bool:
    """Equality filter on data fields; ``None`` matches an absent field."""
    if not where:
        return True
    for field, want in where.items():
        if want is None:
            if field in data:
                return False
        elif field not in data or not _same(data[field], want):
            return False
    return True


def check_version(where: str, table: str, key: str, expected: int | None, actual: int | None) -> None:
    """The optimistic-concurrency rule of every store: ``expected=None`` writes unconditionally, else it
    must equal the stored version (0 = no record); a mismatch raises :class:`VersionConflict`."""
    if expected is not None and expected != (actual or 0):
        raise VersionConflict(where, table, key, expected, actual or None)


class Store(ABC):
    """Synchronous key/record store; one instance may be shared by threads."""

    #: Human-readable location used in error messages (file path, spreadsheet, base).
    where: str = "state"
    #: Backend name: "json", "sheets" or "airtable".
    backend: str = ""

    @abstractmethod
    def get(self, table: str, key: str) -> Record | None: ...

    @abstractmethod
    def upsert(
        self, table: str, key: str, data: dict, *, expected_version: int | None = None
    ) -> Record: ...

    def upsert_many(self, table: str, items: Sequence[tuple[str, dict]]) -> list[Record]:
        """Write many records (no version check); later items win for a repeated key."""
        return [self.upsert(table, k, d) for k, d in items]

    @abstractmethod
    def list(self, table: str, where: dict[str, Any] | None = None) -> list[Record]: ...

    @abstractmethod
    def delete(self, table: str, key: str, *, expected_version: int | None = None) -> bool: ...

    def close(self) -> None:  # pragma: no cover - default no-op
        return None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.where}>"
