"""Fallback policies as values (in the spirit of tenacity): what to try, in what order, how patiently."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

ANTHROPIC = "anthropic"
OPENAI = "openai"


class Target(BaseModel):
    """One (provider, model) pair the chain may call. `provider` names a configured endpoint."""

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str
    context_window: int = 200_000

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.model}"

    def __str__(self) -> str:
        return self.key


class Timeouts(BaseModel):
    """Explicit timeouts: a failover costs one failed round trip, never the SDK's 10-minute default."""

    model_config = ConfigDict(frozen=True)

    connect: float = Field(default=3.0, gt=0)
    read: float = Field(default=120.0, gt=0)


class BreakerPolicy(BaseModel):
    """When a target's circuit opens, and how long before it is tried again."""

    model_config = ConfigDict(frozen=True)

    failure_threshold: int = Field(default=3, ge=1)
    cooldown: float = Field(default=30.0, ge=0)


class FallbackPolicy(BaseModel):
    """An ordered chain of targets plus the rules for moving along it."""

    model_config = ConfigDict(frozen=True)

    targets: tuple[Target, ...]
    primary_provider: str = ANTHROPIC
    timeouts: Timeouts = Timeouts()
    max_retry_after: float = Field(default=2.0, ge=0, description="longest 429 retry-after worth waiting out")
    reasks: int = Field(default=1, ge=0, description="re-asks on the same target after an invalid answer")
    breaker: BreakerPolicy = BreakerPolicy()

    def primary_only(self) -> FallbackPolicy:
        """The chain restricted to the primary provider (deferred and droppable skills never use a secondary)."""
        return self.model_copy(update={"targets": tuple(t for t in self.targets if t.provider == self.primary_provider)})

    def with_targets(self, targets: tuple[Target, ...]) -> FallbackPolicy:
        return self.model_copy(update={"targets": targets})


DEFAULT_TARGETS: tuple[Target, ...] = (
    Target(provider=ANTHROPIC, model="claude-opus-5-5", context_window=200_000),
    Target(provider=ANTHROPIC, model="claude-sonnet-5-5", context_window=200_000),
    Target(provider=OPENAI, model="gpt-5.5", context_window=400_000),
    Target(provider=OPENAI, model="gpt-5.4-mini", context_window=400_000),
)
