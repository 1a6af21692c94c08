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
