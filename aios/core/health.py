"""Health per provider and per model: the snapshot every run reads before it starts."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from aios.core.policy import Target


class Health(StrEnum):
    healthy = "healthy"
    degraded = "degraded"  # slower or partly failing, still worth calling
    down = "down"
    unknown = "unknown"


class HealthSnapshot(BaseModel):
    """What the status-check flow last concluded. Missing entries mean `unknown` (treated as usable)."""

    providers: dict[str, Health] = Field(default_factory=dict)
    models: dict[str, Health] = Field(default_factory=dict)  # keyed by "provider:model"
    checked_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def provider(self, name: str) -> Health:
        return self.providers.get(name, Health.unknown)

    def target(self, target: Target) -> Health:
        """A model is as healthy as the worse of itself and its provider."""
        provider = self.provider(target.provider)
        model = self.models.get(target.key, Health.unknown)
        if Health.down in (provider, model):
            return Health.down
        if Health.degraded in (provider, model):
            return Health.degraded
        if provider is Health.healthy or model is Health.healthy:
            return Health.healthy
        return Health.unknown

    def usable(self, target: Target) -> bool:
        return self.target(target) is not Health.down


class Signal(BaseModel):
    """One observation of one subject ("anthropic" or "anthropic:claude-opus-5-5") by one source."""

    subject: str
    source: str  # status_page | probe | calls
    health: Health
    detail: str = ""


class Hysteresis(BaseModel):
    """Going down is immediate; coming back needs `recover_after` healthy checks in a row."""

    recover_after: int = Field(default=2, ge=1)


class Tracked(BaseModel):
    health: Health = Health.unknown
    healthy_streak: int = 0
    detail: str = ""


class HealthState(BaseModel):
    """The status-check flow's memory between runs (persisted), from which the snapshot is derived."""

    subjects: dict[str, Tracked] = Field(default_factory=dict)

    def snapshot(self) -> HealthSnapshot:
        providers = {k: v.health for k, v in self.subjects.items() if ":" not in k}
        models = {k: v.health for k, v in self.subjects.items() if ":" in k}
        return HealthSnapshot(providers=providers, models=models)


class Change(BaseModel):
    subject: str
    old: Health
    new: Health
    detail: str = ""


_RANK = {Health.unknown: 0, Health.healthy: 1, Health.degraded: 2, Health.down: 3}


def combine(signals: list[Signal]) -> tuple[Health, str]:
    """One subject's observed health this check.

    Direct evidence beats hearsay: when our own probe of a subject succeeded, a status page that
    says "down" only makes it degraded (calls work, so skills keep running and users are warned).
    """
    if not signals:
        return Health.unknown, ""
    probe_ok = any(s.source == "probe" and s.health is Health.healthy for s in signals)
    worst, detail = Health.unknown, ""
    for s in signals:
        health = s.health
        if probe_ok and s.source == "status_page" and health is Health.down:
            health = Health.degraded
        if _RANK[health] > _RANK[worst]:
            worst, detail = health, s.detail
    return worst, detail


def aggregate(previous: HealthState, signals: list[Signal], rule: Hysteresis) -> tuple[HealthState, list[Change]]:
    """Fold one check's signals into the tracked state; return the new state and what changed."""
    by_subject: dict[str, list[Signal]] = {}
    for s in signals:
        by_subject.setdefault(s.subject, []).append(s)
    subjects = dict(previous.subjects)
    changes: list[Change] = []
    for subject in sorted(set(subjects) | set(by_subject)):
        old = subjects.get(subject, Tracked())
        observed, detail = combine(by_subject.get(subject, []))
        if observed is Health.unknown:
            continue  # no evidence this round: keep what we knew
        if observed is Health.healthy and old.health in (Health.down, Health.degraded):
            streak = old.healthy_streak + 1
            new = Tracked(
                health=Health.healthy if streak >= rule.recover_after else old.health,
                healthy_streak=0 if streak >= rule.recover_after else streak,
                detail=detail if streak >= rule.recover_after else old.detail,
            )
        else:
            new = Tracked(health=observed, healthy_streak=0, detail=detail)
        subjects[subject] = new
        if new.health is not old.health:
            changes.append(Change(subject=subject, old=old.health, new=new.health, detail=new.detail))
    return HealthState(subjects=subjects), changes
