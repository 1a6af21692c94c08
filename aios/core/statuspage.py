"""Read an Atlassian Statuspage summary (`/api/v2/summary.json`) into health signals. Pure."""

from __future__ import annotations

import re
from typing import Any

from aios.core.health import Health, Signal, worse
from aios.core.policy import Target

COMPONENT_HEALTH = {
    "operational": Health.healthy,
    "degraded_performance": Health.degraded,
    "partial_outage": Health.degraded,
    "major_outage": Health.down,
    "under_maintenance": Health.down,
}
INDICATOR_HEALTH = {"none": Health.healthy, "minor": Health.degraded, "major": Health.degraded, "critical": Health.down}
MODEL_FAMILIES = ("opus", "sonnet", "haiku", "fable", "mythos")
UNRESOLVED = {"investigating", "identified", "monitoring"}


def signals_from_summary(
    summary: dict[str, Any], provider: str, component_pattern: str, targets: list[Target]
) -> list[Signal]:
    """Provider health from the API component (worst of it and the page indicator when they disagree
    upward only through the component), plus per-model signals from unresolved incidents naming a family."""
    pattern = re.compile(component_pattern, re.IGNORECASE)
    components = [c for c in summary.get("components", []) if pattern.search(c.get("name", ""))]
    health = Health.unknown
    detail = ""
    for c in components:
        h = COMPONENT_HEALTH.get(c.get("status", ""), Health.unknown)
        if worse(h, health) is h and h is not health:
            health, detail = h, f"status page: {c['name']} {c['status']}"
    if not components:
        indicator = (summary.get("status") or {}).get("indicator", "")
        health = INDICATOR_HEALTH.get(indicator, Health.unknown)
        detail = f"status page indicator {indicator}"
    out = [Signal(subject=provider, source="status_page", health=health, detail=detail)] if health is not Health.unknown else []

    for incident in summary.get("incidents", []):
        if incident.get("status") not in UNRESOLVED:
            continue
        name = incident.get("name", "")
        families = [f for f in MODEL_FAMILIES if re.search(rf"\b{f}\b", name, re.IGNORECASE)]
        for target in targets:
            if target.provider == provider and any(f in target.model.lower() for f in families):
                impact = Health.down if incident.get("impact") in ("major", "critical", None) else Health.degraded
                out.append(Signal(subject=target.key, source="status_page", health=impact, detail=f"incident: {name}"))
    return out
