"""Fallback policies as values (in the spirit of tenacity): what to try, in what order, how patiently."""

from __future__ import annotations

import re

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

ANTHROPIC = "anthropic"
OPENAI = "openai"


def parse_deadline(text: str) -> float:
    """Seconds in a skill's `metadata.deadline`: "90", "90s", "10m", "1h", "1h30m"."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", value)
        if not parts or re.sub(r"\s+", "", "".join(n + u for n, u in parts)) != re.sub(r"\s+", "", value):
            raise ValueError(f"'{text}' is not a duration like 90s, 10m or 1h30m")
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"'{text}' must be longer than zero")
    return seconds


def _valid_deadline(text: str) -> str:
    parse_deadline(text)  # a ValueError names the value and the accepted forms
    return text


Deadline = Annotated[str, AfterValidator(_valid_deadline)]
"""A time budget as written ("10m"), checked where it is declared: a skill's metadata and a policy."""


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
    trial_lease: float = Field(
        default=180.0, gt=0, description="how long a half-open trial claim holds before another process may take it"
    )


class HedgePolicy(BaseModel):
    """When a slow primary gets company: after `hedge_after(...)` seconds the next provider starts in parallel.

    The delay is `after` when set, else the primary's recent time-to-answer at `quantile` times
    `factor`, bounded to [`min_after`, `max_after`]; with fewer than `min_samples` answers seen it is
    `max_after` (no evidence yet: do not double the bill).
    """

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    after: float | None = Field(default=None, gt=0, description="a fixed delay instead of the derived one")
    quantile: float = Field(default=0.95, gt=0, le=1)
    factor: float = Field(default=2.0, gt=0)
    min_after: float = Field(default=0.5, gt=0)
    max_after: float = Field(default=10.0, gt=0)
    min_samples: int = Field(default=5, ge=1)

    def hedge_after(self, recent: list[float]) -> float:
        """Seconds to wait for the primary before starting the hedge, from its recent answer times."""
        if self.after is not None:
            return self.after
        if len(recent) < self.min_samples:
            return self.max_after
        ordered = sorted(recent)
        at = ordered[min(len(ordered) - 1, int(self.quantile * len(ordered)))]
        return min(self.max_after, max(self.min_after, at * self.factor))


class FallbackPolicy(BaseModel):
    """An ordered chain of targets plus the rules for moving along it."""

    model_config = ConfigDict(frozen=True)

    targets: tuple[Target, ...]
    primary_provider: str = Field(
        default=ANTHROPIC, description="the provider whose outage defers and drops skills: the first target's, unless given"
    )
    timeouts: Timeouts = Timeouts()
    max_retry_after: float = Field(default=2.0, ge=0, description="longest 429 retry-after worth waiting out")
    reasks: int = Field(default=1, ge=0, description="re-asks on the same target after an invalid answer")
    wait_retries: int = Field(default=1, ge=0, description="retries on the same target after waiting out a retry-after")
    breaker: BreakerPolicy = BreakerPolicy()
    hedge: HedgePolicy = HedgePolicy()
    deadline: Deadline | None = Field(default=None, description="the whole run's time budget, as written: '10m'")
    left: float | None = Field(
        default=None, ge=0, description="seconds of the deadline the run has left as this chain starts (RunDeadline)"
    )

    @model_validator(mode="before")
    @classmethod
    def _primary_is_where_the_chain_starts(cls, data: object) -> object:
        """A chain `claude-code → codex` has claude-code as its primary, not Anthropic's API it never calls."""
        if isinstance(data, dict) and "primary_provider" not in data and data.get("targets"):
            first = data["targets"][0]
            provider = first.get("provider") if isinstance(first, dict) else getattr(first, "provider", None)
            if provider:
                return {**data, "primary_provider": provider}
        return data

    @property
    def deadline_s(self) -> float | None:
        """Seconds the deadline allows (every target, re-ask and wait), or None: no bound."""
        return parse_deadline(self.deadline) if self.deadline else None

    @property
    def budget_s(self) -> float | None:
        """Seconds this chain may take: what the run has left of its deadline, else the whole deadline."""
        return self.left if self.left is not None and self.deadline else self.deadline_s

    def primary_only(self) -> FallbackPolicy:
        """The chain restricted to the primary provider (deferred and droppable skills never use a secondary).

        Hedging is off too: a hedge is a second provider, which these skills never use.
        """
        return self.model_copy(
            update={
                "targets": tuple(t for t in self.targets if t.provider == self.primary_provider),
                "hedge": self.hedge.model_copy(update={"enabled": False}),
            }
        )

    def hedge_split(self) -> int | None:
        """Index of the first target on another provider than the first target's: where a hedge starts.

        A hedge on the same provider would share its outage, so the chain's leading run of one
        provider is raced against the rest. None: nothing to hedge with (or hedging is off).
        """
        if not self.hedge.enabled or not self.targets:
            return None
        first = self.targets[0].provider
        return next((i for i, t in enumerate(self.targets) if t.provider != first), None)

    def with_targets(self, targets: tuple[Target, ...]) -> FallbackPolicy:
        return self.model_copy(update={"targets": targets})


DEFAULT_TARGETS: tuple[Target, ...] = (
    Target(provider=ANTHROPIC, model="claude-opus-5-5", context_window=200_000),
    Target(provider=ANTHROPIC, model="claude-sonnet-5-5", context_window=200_000),
    Target(provider=OPENAI, model="gpt-5.5", context_window=400_000),
    Target(provider=OPENAI, model="gpt-5.4-mini", context_window=400_000),
)
