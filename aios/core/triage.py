"""Triage: decide, from a skill's class and the health snapshot, whether and where a run happens.

critical -> run on every usable target of the chain (fail over at once)
defer    -> run on the primary provider only; if it is down, park the run for later
drop     -> run on the primary provider only; if it is down, skip it and record the drop
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from aios.core.health import HealthSnapshot
from aios.core.policy import FallbackPolicy, Target


class Triage(StrEnum):
    """What a skill does while its primary provider is unhealthy."""

    critical = "critical"  # fail over at once
    defer = "defer"  # wait in the paused `deferred` queue, run on Claude later
    drop = "drop"  # skip and record


class RunDecision(StrEnum):
    run = "run"
    defer = "defer"
    drop = "drop"


class RunPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision: RunDecision
    policy: FallbackPolicy
    skipped: tuple[Target, ...] = ()  # targets left out because the snapshot says they are down
    reason: str = ""


def plan_run(triage: Triage, policy: FallbackPolicy, health: HealthSnapshot) -> RunPlan:
    """The decision taken at the start of every run."""
    allowed = policy if triage is Triage.critical else policy.primary_only()
    usable = tuple(t for t in allowed.targets if health.usable(t))
    skipped = tuple(t for t in allowed.targets if not health.usable(t))
    if usable:
        reason = f"{len(skipped)} target(s) down, skipped" if skipped else "healthy"
        return RunPlan(decision=RunDecision.run, policy=allowed.with_targets(usable), skipped=skipped, reason=reason)
    if triage is Triage.critical:
        # Everything is reported down: trying beats giving up, the breakers keep it cheap.
        return RunPlan(decision=RunDecision.run, policy=allowed, reason="all targets reported down; trying anyway")
    down = f"{policy.primary_provider} is down"
    if triage is Triage.defer:
        return RunPlan(decision=RunDecision.defer, policy=allowed, skipped=skipped, reason=down)
    return RunPlan(decision=RunDecision.drop, policy=allowed, skipped=skipped, reason=down)


def after_chain_failed(triage: Triage) -> RunDecision | None:
    """The decision taken again when the primary fails during the run (None: the run failed)."""
    return {Triage.critical: None, Triage.defer: RunDecision.defer, Triage.drop: RunDecision.drop}[triage]
