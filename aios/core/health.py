"""Health per provider and per model: the snapshot every run reads before it starts, and the rules
that turn observations (probes, real calls, status pages) into it. Pure: the status-check flow
gathers the observations and persists the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from aios.core.failures import Verdict
from aios.core.policy import Target


class Health(StrEnum):
    healthy = "healthy"
    degraded = "degraded"  # slower or partly failing, still worth calling
    down = "down"
    unknown = "unknown"


_RANK = {Health.unknown: 0, Health.healthy: 1, Health.degraded: 2, Health.down: 3}


def worse(a: Health, b: Health) -> Health:
    """The worse of two healths (unknown < healthy < degraded < down); `a` on a tie."""
    return a if _RANK[a] >= _RANK[b] else b


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

    def provider_usable(self, provider: str, targets: Iterable[Target]) -> bool:
        """Can a run still reach `provider`? Yes while any of its targets is not down."""
        return any(self.usable(t) for t in targets if t.provider == provider)


class Signal(BaseModel):
    """One observation of one subject ("anthropic" or "anthropic:claude-opus-5-5") by one source."""

    subject: str
    source: str  # status_page | probe | readiness | calls
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
        if worse(health, worst) is not worst:
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


# --- the rules that turn observations into signals --------------------------------------------------

CALLS_DOWN_RATE = 0.5  # at least this share of real calls failed (and at least CALLS_DOWN_MIN of them): down
CALLS_DOWN_MIN = 2
CALLS_DEGRADED_RATE = 0.2  # at least this share failed: degraded


def calls_health(ok: int, failed: int) -> Health:
    """A target's health from its real calls since the last check (`failed` counts health failures only)."""
    total = ok + failed
    if total == 0:
        return Health.unknown
    rate = failed / total
    if rate >= CALLS_DOWN_RATE and failed >= CALLS_DOWN_MIN:
        return Health.down
    if rate >= CALLS_DEGRADED_RATE:
        return Health.degraded
    return Health.healthy


def call_signals(calls: Iterable[tuple[str, bool]]) -> list[Signal]:
    """Signals from real calls, each `(target key, counts against health)`.

    "Counts against health" is the verdict's `unhealthy` (the same bit the circuit breaker counts),
    recorded on every attempt: a 404, a waited-out 429 or an invalid answer says nothing about the target.
    """
    counts: dict[str, list[int]] = {}
    for key, unhealthy in calls:
        counts.setdefault(key, [0, 0])[1 if unhealthy else 0] += 1
    return [
        Signal(subject=key, source="calls", health=calls_health(ok, bad), detail=f"calls: {bad}/{ok + bad} failed")
        for key, (ok, bad) in counts.items()
    ]


def probe_signals(results: Sequence[tuple[Target, Verdict | None]]) -> list[Signal]:
    """Signals from one probe per target (`None`: it answered; else the verdict on its failure).

    An answer is direct evidence for the model and its provider; a failure counts only when the
    verdict says it is the target's fault; when every model of a provider failed so, the provider is down.
    """
    signals: list[Signal] = []
    for target, verdict in results:
        if verdict is None:
            signals.append(Signal(subject=target.key, source="probe", health=Health.healthy, detail="probe ok"))
            signals.append(Signal(subject=target.provider, source="probe", health=Health.healthy, detail="probe ok"))
        elif verdict.unhealthy:
            detail = f"probe: {verdict.error_class.value}"
            signals.append(Signal(subject=target.key, source="probe", health=Health.down, detail=detail))
    for provider in dict.fromkeys(t.provider for t, _ in results):
        verdicts = [v for t, v in results if t.provider == provider]
        if all(v is not None and v.unhealthy for v in verdicts):
            signals.append(Signal(subject=provider, source="probe", health=Health.down, detail="probe: every model failed"))
    return signals


def unexplained_failover(answered_by: str, primary: str, health: HealthSnapshot) -> bool:
    """A run answered by a secondary while the status checks still call the primary up: worth telling the user."""
    return answered_by != primary and health.provider(primary) is not Health.down


# --- agent-CLI targets (`claude-code:…`, `codex:…`): a probe there is a real call on the user's subscription ---


def probe_plan(targets: Sequence[Target], cli_providers: Iterable[str], answer_cli: bool) -> tuple[list[Target], list[Target]]:
    """Which targets get a real probe question, and which CLI targets get only the readiness check.

    Every CLI target gets the readiness check (binary, version, login) on every status check: it is free.
    A real question to a CLI target spends the user's subscription, so it is asked only when they opt in.
    """
    cli = set(cli_providers)
    readiness = [t for t in targets if t.provider in cli]
    answer = [t for t in targets if t.provider not in cli or answer_cli]
    return answer, readiness


def readiness_signals(results: Sequence[tuple[Target, str | None]]) -> list[Signal]:
    """Signals from CLI readiness checks, each `(target, problem or None)`.

    A CLI that cannot run (not installed, not logged in) is down for us whatever its upstream says.
    A ready one is healthy as far as this check can tell, so a fixed install or login brings the
    target back (triage skips down targets, so no real call would); an upstream outage behind a
    ready CLI still shows, through real calls and opted-in probes, and the worse signal wins.
    """
    signals: list[Signal] = []
    for target, problem in results:
        health, detail = (Health.healthy, "readiness: ready") if problem is None else (Health.down, f"readiness: {problem}")
        signals.append(Signal(subject=target.key, source="readiness", health=health, detail=detail))
    for provider in dict.fromkeys(t.provider for t, _ in results):
        problems = [p for t, p in results if t.provider == provider]
        broken = all(p is not None for p in problems)
        signals.append(Signal(subject=provider, source="readiness", health=Health.down if broken else Health.healthy,
                              detail=f"readiness: {problems[0]}" if broken else "readiness: ready"))
    return signals
