"""Skills that work on the user's records: which records, which step next, what an answer may write.

Pure: no store, no HTTP, no Prefect. `flows/records.py` does the reading and writing; this module
decides. A skill declares (front matter, all strings):

    source:  "leads where status = new"        the table and the filter that make a record pending
    updates: "status, fit, score, next_step"   the only fields an answer may write back
    steps:   "research, qualify, draft"        ordered steps, each with its own contract (optional)

A skill that summarizes records (a weekly report) declares `reads: "leads where status = qualified"`
instead: it is given those records as its input and writes none of them.

Progress is kept per record and step, so a workflow resumes at its first unfinished step on
whichever model answers next, and never repeats a finished one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PROGRESS_TABLE = "record_progress"
STEP_DONE = "done"
SINGLE_STEP = "answer"  # the one step of a skill that declares none
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_TABLE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,99}$")
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ \-]*$")
_RESERVED = {"key", "version", "updated_at"}


class UndeclaredWrite(ValueError):
    """A run tried to write a table or field its skill does not declare (a bug, never done)."""


class Selection(BaseModel):
    """`leads where status = new and owner = dana`: a table and equality conditions on its fields."""

    model_config = ConfigDict(frozen=True)

    table: str
    where: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Selection:
        found = re.match(r"^(.*?)(\s+where\b(.*))?$", text.strip(), re.DOTALL)
        assert found is not None  # the pattern matches any text
        table, sep, condition = found.group(1).strip(), found.group(2), found.group(3) or ""
        if not _TABLE_RE.match(table):
            raise ValueError(f"'{text.strip()}' does not start with a table name (e.g. 'leads where status = new')")
        if sep and not condition.strip():
            raise ValueError(f"'{text.strip()}' has nothing after 'where'")
        where: dict[str, str] = {}
        for part in re.split(r"\s+and\s+", condition.strip()) if sep else []:
            field, eq, value = part.partition("=")
            field, value = field.strip(), value.strip().strip("'\"")
            if not eq or not _FIELD_RE.match(field) or not value:
                raise ValueError(f"'{part.strip()}' is not of the form field = value")
            if field in where:
                raise ValueError(f"field '{field}' is named twice")
            where[field] = value
        return cls(table=table, where=where)

    def matches(self, data: Mapping[str, Any]) -> bool:
        return all(str(data.get(field, "")) == value for field, value in self.where.items())

    def __str__(self) -> str:
        conditions = " and ".join(f"{f} = {v}" for f, v in self.where.items())
        return f"{self.table} where {conditions}" if conditions else self.table


def parse_names(text: str, what: str) -> tuple[str, ...]:
    """`"research, qualify, draft"` -> names; lowercase identifiers, each once."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise ValueError(f"names no {what}")
    for name in names:
        if not _NAME_RE.match(name):
            raise ValueError(f"{what} '{name}' must be lowercase letters, digits and '_'")
    if len(set(names)) != len(names):
        raise ValueError(f"a {what} is named twice")
    return names


def parse_fields(text: str) -> tuple[str, ...]:
    """`"status, fit, score"` -> field names an answer may write (never the store's own columns)."""
    fields = tuple(part.strip() for part in text.split(",") if part.strip())
    if not fields:
        raise ValueError("names no field")
    for field in fields:
        if not _FIELD_RE.match(field) or field in _RESERVED:
            raise ValueError(f"'{field}' cannot be written by a skill")
    if len(set(fields)) != len(fields):
        raise ValueError("a field is named twice")
    return fields


def step_column(step: str) -> str:
    """The column in the user's own sheet or base that shows a step is done."""
    return f"step_{step}"


class StepDone(BaseModel):
    """A finished step: its validated output and who answered it."""

    output: dict[str, Any]
    provider: str
    model: str
    run_id: str
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class Progress(BaseModel):
    """A record's progress through a skill's steps, kept in the state store beside the record."""

    skill: str
    table: str
    record: str
    steps: dict[str, StepDone] = Field(default_factory=dict)

    @staticmethod
    def key_for(skill: str, table: str, record: str) -> str:
        return f"{skill}/{table}/{record}"

    def next_step(self, steps: Sequence[str]) -> str | None:
        return first_unfinished(steps, self.steps)

    def answer(self, steps: Sequence[str]) -> dict[str, Any]:
        """The steps' outputs merged in order (a later step's field wins)."""
        merged: dict[str, Any] = {}
        for step in steps:
            if step in self.steps:
                merged.update(self.steps[step].output)
        return merged


def first_unfinished(steps: Sequence[str], done: Iterable[str]) -> str | None:
    """The step to run next: the first one without a checkpoint (None: the workflow is finished)."""
    finished = set(done)
    return next((step for step in steps if step not in finished), None)


class WritePlan(BaseModel):
    """What a skill may write: one table, its declared answer fields, and one status column per step."""

    model_config = ConfigDict(frozen=True)

    table: str
    updates: tuple[str, ...]
    steps: tuple[str, ...]

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(self.updates) | {step_column(s) for s in self.steps}

    def step_marked(self, data: Mapping[str, Any], step: str) -> dict[str, Any]:
        """The record with `step_<step>` set to done."""
        return self.checked(self.table, data, {**data, step_column(step): STEP_DONE})

    def answered(self, data: Mapping[str, Any], answer: Mapping[str, Any]) -> dict[str, Any]:
        """The record with the declared fields of the answer written in (others are left alone)."""
        written = {f: _cell(answer[f]) for f in self.updates if f in answer}
        done = {step_column(s): STEP_DONE for s in self.steps}
        return self.checked(self.table, data, {**data, **written, **done})

    def checked(self, table: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
        """`after`, if it changes only declared fields of the declared table; else UndeclaredWrite."""
        if table != self.table:
            raise UndeclaredWrite(f"table '{table}' is not the skill's source table '{self.table}'")
        changed = {f for f in set(before) | set(after) if before.get(f) != after.get(f)}
        undeclared = sorted(changed - self.fields)
        if undeclared:
            raise UndeclaredWrite(f"field(s) {', '.join(undeclared)} of table '{table}' are not declared in metadata.updates")
        return dict(after)


def _cell(value: Any) -> Any:
    """A value a sheet cell or base field holds: lists become one line, the rest stays."""
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return value


READ_LIMIT = 100  # most records a reading skill is given (the newest): keeps its prompt bounded


def read_input(records: Iterable[tuple[str, datetime, Mapping[str, Any]]], limit: int = READ_LIMIT) -> list[dict[str, Any]]:
    """What a reading skill is given: each record's key, when it last changed and its fields, newest first."""
    rows = sorted(records, key=lambda r: (r[1], r[0]), reverse=True)[:limit]
    return [{"key": key, "updated_at": at.isoformat(), **data} for key, at, data in rows]


def unchanged_since(seen: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """A person edited the record if any field differs from what this run last saw or wrote
    (catches edits made in the sheet itself, which do not bump the version column)."""
    return dict(seen) == dict(current)
