"""Process-wide runtime: settings, provider adapters and circuit breakers shared by every run,
and the preflight that checks everything a run needs before the first (paid) model call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aios.core.breaker import BreakerBoard, BreakerStore
from aios.core.hedge import LatencyWindow
from aios.core.policy import BreakerPolicy, FallbackPolicy
from aios.providers import Providers
from aios.config.settings import Settings, get_settings, load_settings
from aios.skills.loader import Skill


@dataclass
class Runtime:
    settings: Settings
    providers: Providers
    breakers: BreakerBoard = field(default_factory=BreakerBoard)
    latencies: LatencyWindow = field(default_factory=LatencyWindow)  # recent answer times, for the hedge delay


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The runtime of this process (created on first use, shared by all runs)."""
    global _runtime
    if _runtime is None:
        settings = get_settings()
        policy = BreakerPolicy(failure_threshold=settings.breaker_threshold, cooldown=settings.breaker_cooldown)
        board = BreakerBoard(policy, store=breaker_store(settings))
        _runtime = Runtime(settings=settings, providers=Providers(settings), breakers=board)
    return _runtime


def breaker_store(settings: Settings) -> BreakerStore:
    """Where breakers live (AIOS_BREAKER_STORE): a file every process on this host shares by default,
    Redis when AIOS_BREAKER_REDIS_URL is set, or this process's memory."""
    from aios.outage.breaker_store import configured_kind, open_breaker_store

    kind = configured_kind(settings.breaker_store, settings.breaker_redis_url)
    path = settings.breaker_path or settings.home / ".aios" / "breakers.json"
    return open_breaker_store(kind, path=path, redis_url=settings.breaker_redis_url)


def reset_runtime() -> None:
    """Forget adapters and breakers (tests, drills, or after settings change).

    The breakers are forgotten in the shared store too: every process starts from closed circuits.
    """
    global _runtime
    runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.breakers.reset()
        return
    from aios.errors import ConfigError

    try:
        breaker_store(get_settings()).clear()
    except ConfigError:
        pass  # settings that cannot open a store have nothing stored to forget


@dataclass(frozen=True)
class Checked:
    """What the preflight found good: the run may start."""

    settings: Settings
    skill: Skill
    policy: FallbackPolicy


def preflight(skill_name: str, given: dict[str, Any]) -> Checked:
    """Check every setting, the skill, its inputs, the context budget and the state store.

    A run that would fail after paying for an answer (a bad setting, knowledge over budget, a state
    file it cannot record in) fails here instead: one AiosError, no flow started, no model called.
    """
    from aios.skills.loader import find_skill

    settings = load_settings()
    skill = find_skill(settings.skills_dir, skill_name)
    skill.check_inputs(given)
    policy = settings.skill_policy(skill)
    check_context_and_store(settings, skill.name)
    return Checked(settings=settings, skill=skill, policy=policy)


def check_context_and_store(settings: Settings, skill: str | None = None) -> None:
    """What every model call shares: knowledge within the budget, a state store to record in, and on a
    fleet an operational state every host shares."""
    from aios.outage.health_store import require_shared_state
    from aios.skills.prompt_context import assemble_context

    require_shared_state(settings)
    assemble_context(settings.home, settings.context_max_chars, settings.memory_path)
    check_state_store(skill)


def check_state_store(skill: str | None = None) -> None:
    """Open the store a run records in and read it once (a malformed file or setting raises StateError)."""
    from aios.runs.record import RUNS_TABLE
    from aios.state import BackendUnavailable, open_store

    store = open_store(skill=skill)
    try:
        store.get(RUNS_TABLE, "preflight")
    except BackendUnavailable:
        pass  # a remote store that is down journals the run's record: no reason to hold the run
