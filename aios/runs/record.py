"""The record every skill run leaves behind, whatever its ending; and a records run's, record by record."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from aios.core.fallback import Attempt, Usage
from aios.core.triage import Triage

RUNS_TABLE = "runs"


class RunStatus(StrEnum):
    completed = "completed"  # a valid output exists
    deferred = "deferred"  # parked in the paused queue; a later run will do the work
    dropped = "dropped"  # skipped on purpose during an outage
    failed = "failed"  # no valid output and nothing will retry it


class SkillRun(BaseModel):
    run_id: str
    #: the run this run's occurrence began with: itself, or the crashed run it resubmits (aios/outage/recovery.py)
    first_run_id: str | None = None
    skill: str
    triage: Triage
    status: RunStatus
    provider: str | None = None
    model: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    output: dict[str, Any] | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    usage: Usage = Usage()
    reason: str = ""
    parked_run_id: str | None = None
    misconfigured: list[str] = Field(default_factory=list)
    #: "provider:model" -> why it was never called because the health snapshot says it is down
    skipped: dict[str, str] = Field(default_factory=dict)
    memory: str | None = None  # what memory extraction did: "2 new facts", or why it was skipped or cut
    not_recorded: str | None = None  # why the state store has no record of this run (it went to the journal)
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.completed

    @property
    def record_key(self) -> str:
        """Where the record lives: under the first run of the occurrence, so a resubmission that could not
        see its predecessor's record (the store did not answer, or it waits in a dead host's journal)
        overwrites it instead of adding a second one."""
        return self.first_run_id or self.run_id

    def summary(self) -> dict[str, Any]:
        """The `aios run --json` shape."""
        return {
            "skill": self.skill,
            "run_id": self.run_id,
            "status": self.status.value,
            "provider": self.provider,
            "model": self.model,
            "attempts": [
                {
                    "provider": a.provider,
                    "model": a.model,
                    "outcome": a.outcome.value,
                    "error_class": a.error_class.value if a.error_class else None,
                    "ms": a.ms,
                }
                for a in self.attempts
            ],
            "output": self.output,
            "reason": self.reason,
            "parked_run_id": self.parked_run_id,
            "not_recorded": self.not_recorded,
        }


class RecordOutcome(StrEnum):
    """How one record of a records run ended."""

    written = "written"  # every step done, the answer is in the record
    conflict = "conflict"  # a person edited the record meanwhile: left alone
    failed = "failed"  # a step got no answer; the next run resumes there
    deferred = "deferred"  # parked for Claude: the parked run resumes there
    dropped = "dropped"  # skipped on purpose during an outage


class RecordResult(BaseModel):
    key: str
    outcome: RecordOutcome
    steps_run: list[str] = Field(default_factory=list)  # answered in this run, in order
    answered_by: dict[str, str] = Field(default_factory=dict)  # step -> provider:model (this run)
    reason: str = ""
    parked_run_id: str | None = None


class RecordsRun(BaseModel):
    """What one records run did, record by record (stored in `runs` beside the skill runs)."""

    run_id: str
    skill: str
    source: str
    records: list[RecordResult] = Field(default_factory=list)
    reason: str = ""
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None

    def keys(self, outcome: RecordOutcome) -> list[str]:
        return [r.key for r in self.records if r.outcome == outcome]

    @property
    def ok(self) -> bool:
        return not self.keys(RecordOutcome.failed)
