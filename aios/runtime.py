"""Process-wide runtime: settings, provider adapters and circuit breakers shared by every run."""

from __future__ import annotations

from dataclasses import dataclass, field

from aios.core.breaker import BreakerBoard
from aios.core.policy import BreakerPolicy
from aios.providers import Providers
from aios.settings import Settings, get_settings


@dataclass
class Runtime:
    settings: Settings
    providers: Providers
    breakers: BreakerBoard = field(default_factory=BreakerBoard)


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The runtime of this process (created on first use, shared by all runs)."""
    global _runtime
    if _runtime is None:
        settings = get_settings()
        policy = BreakerPolicy(failure_threshold=settings.breaker_threshold, cooldown=settings.breaker_cooldown)
        _runtime = Runtime(settings=settings, providers=Providers(settings), breakers=BreakerBoard(policy))
    return _runtime


def reset_runtime() -> None:
    """Forget adapters and breakers (tests, or after settings change)."""
    global _runtime
    _runtime = None
