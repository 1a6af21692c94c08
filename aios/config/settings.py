"""Settings from the environment (prefix `AIOS_`); `<project root>/.env` fills in what is not set.

Every value is checked when the settings load (`AIOS_TARGETS` parsed, numbers in range, JSON
decoded), so a bad setting is one line naming its variable before any flow starts or model is called.

Provider keys and base URLs are NOT aios settings: each SDK's own variables apply
(`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_BASE_URL`), and a further
OpenAI-compatible endpoint names the variables that hold its key and URL.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from aios.config.bootstrap import load_env_file, project_root

from aios.core.policy import (
    ANTHROPIC,
    DEFAULT_TARGETS,
    OPENAI,
    BreakerPolicy,
    HedgePolicy,
    FallbackPolicy,
    Target,
    Timeouts,
)
from aios.errors import ConfigError

# Context windows of models we know; anything else is assumed to have 200k tokens.
KNOWN_WINDOWS: dict[str, int] = {t.model: t.context_window for t in DEFAULT_TARGETS} | {
    "claude-haiku-5-5": 200_000,
    "claude-opus-5": 200_000,
    "claude-sonnet-5": 200_000,
    "gpt-5.4": 400_000,
    "gpt-4.1": 1_000_000,
    "gpt-4.1-mini": 1_000_000,
}


class Endpoint(BaseModel):
    """A provider endpoint: the SDK it speaks, and where its key and URL come from."""

    name: str
    kind: Literal["anthropic", "openai"]
    api_key_env: str
    base_url_env: str | None = None
    base_url: str | None = None
    api: Literal["chat", "responses"] = "chat"  # OpenAI-compatible endpoints: which API to call

    def resolved_base_url(self) -> str | None:
        if self.base_url_env and os.environ.get(self.base_url_env):
            return os.environ[self.base_url_env]
        return self.base_url

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None


# Agent CLIs as targets (`claude-code:sonnet`, `codex:gpt-5.5`): no endpoint, the CLI owns its login.
AGENT_CLI_PROVIDERS = ("claude-code", "codex")  # adapters: aios/providers/agent_cli.py

DEFAULT_ENDPOINTS = [
    Endpoint(name=ANTHROPIC, kind="anthropic", api_key_env="ANTHROPIC_API_KEY", base_url_env="ANTHROPIC_BASE_URL"),
    Endpoint(name=OPENAI, kind="openai", api_key_env="OPENAI_API_KEY", base_url_env="OPENAI_BASE_URL"),
]


class Settings(BaseSettings):
    # No env_file here: `load_env_file` puts `<project root>/.env` into the environment once, so
    # these settings, the state settings (`AIOS_STATE_*`) and the SDKs' keys all read one source.
    model_config = SettingsConfigDict(env_prefix="AIOS_", extra="ignore")

    home: Path = Field(default_factory=project_root)
    # before `targets`: a target may name one of these endpoints
    extra_endpoints: Annotated[list[Endpoint], NoDecode] = Field(
        default_factory=list, description="further OpenAI-compatible endpoints (a JSON list)"
    )
    targets: str | None = Field(default=None, description="provider:model[@window], comma-separated")
    connect_timeout: float = Field(default=3.0, gt=0)
    read_timeout: float = Field(default=120.0, gt=0)
    max_retry_after: float = Field(default=2.0, ge=0)
    reasks: int = Field(default=1, ge=0)
    breaker_threshold: int = Field(default=3, ge=1)
    breaker_cooldown: float = Field(default=30.0, ge=0)
    anthropic_output: Literal["json_schema", "tool"] = "json_schema"
    max_tokens: int = Field(default=4096, ge=1)
    context_max_chars: int = Field(default=60_000, ge=1)
    work_pool: str = "aios"
    deferred_queue: str = "deferred"
    default_queue: str = "default"
    stuck_pending_seconds: float = Field(default=300.0, gt=0)  # a claimed run not started by then is submitted again
    json_logs: bool = False
    memory_dir: Path | None = None  # default <home>/memory
    memory_extraction: bool = True  # for skills whose metadata says memory: "true"
    # health checks and alerts
    status_claude_url: str = "https://status.claude.com"
    status_openai_url: str | None = "https://status.openai.com"
    status_claude_component: str = r"Claude API"
    status_openai_component: str = r"Chat Completions|Responses"
    status_timeout: float = Field(default=5.0, gt=0)
    probe: bool = True
    probe_timeout: float = Field(default=5.0, gt=0)
    health_recover_after: int = Field(default=2, ge=1)
    alert_urls: str | None = None
    alert_burst_seconds: float = Field(default=600.0, ge=0)
    # shared breaker memory and hedged requests (issue 15)
    breaker_store: Literal["file", "redis", "memory"] | None = Field(
        default=None, description="where breakers live; default redis when AIOS_BREAKER_REDIS_URL is set, else file"
    )
    breaker_path: Path | None = None  # the file store; default <home>/.aios/breakers.json
    breaker_redis_url: str | None = None  # e.g. redis://127.0.0.1:6379/0
    hedge: bool = True  # critical skills start the next provider when the primary is late
    hedge_after: float | None = Field(default=None, gt=0, description="fixed seconds; default: from recent answer times")
    hedge_min: float = Field(default=0.5, gt=0)
    hedge_max: float = Field(default=10.0, gt=0)

    @field_validator("home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.resolve()

    @field_validator("extra_endpoints", mode="before")
    @classmethod
    def _decode_endpoints(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else []
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno}); expected a list of endpoints") from None
        return value

    @field_validator("targets")
    @classmethod
    def _check_targets(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value or not value.strip():
            return None
        try:
            targets = parse_targets(value.split(","), "AIOS_TARGETS")
        except ConfigError as exc:
            raise ValueError(exc.problem) from None
        if "extra_endpoints" in info.data:  # else that variable's own error is the one to fix
            known = {e.name for e in [*DEFAULT_ENDPOINTS, *info.data["extra_endpoints"]]} | set(AGENT_CLI_PROVIDERS)
            unknown = sorted({t.provider for t in targets} - known)
            if unknown:
                raise ValueError(_unknown_providers(unknown, known))
        return value

    @property
    def skills_dir(self) -> Path:
        return self.home / "skills"

    @property
    def memory_path(self) -> Path:
        return (self.memory_dir or self.home / "memory").resolve()

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        return {e.name: e for e in [*DEFAULT_ENDPOINTS, *self.extra_endpoints]}

    def policy(self, override: list | None = None, *, source: str | Path = "AIOS_TARGETS", field: str | None = None) -> FallbackPolicy:
        """The fallback policy: a skill's own `models` list, else AIOS_TARGETS, else the defaults.

        `source` and `field` name where `override` came from, so an error blames the right place.
        """
        if override:
            targets = parse_targets([str(spec) for spec in override], source, field)
        elif self.targets:
            targets, source, field = parse_targets(self.targets.split(","), "AIOS_TARGETS"), "AIOS_TARGETS", None
        else:
            targets = DEFAULT_TARGETS
        known = set(self.endpoints) | set(AGENT_CLI_PROVIDERS)
        unknown = sorted({t.provider for t in targets} - known)
        if unknown:
            raise ConfigError(source, _unknown_providers(unknown, known), field)
        return FallbackPolicy(
            targets=targets,
            timeouts=Timeouts(connect=self.connect_timeout, read=self.read_timeout),
            max_retry_after=self.max_retry_after,
            reasks=self.reasks,
            breaker=BreakerPolicy(failure_threshold=self.breaker_threshold, cooldown=self.breaker_cooldown),
            hedge=self.hedge_policy(),
        )


    def skill_policy(self, skill: Any) -> FallbackPolicy:
        """A skill's policy, bounded by its `metadata.deadline`; a bad `metadata.models` entry is blamed on its
        SKILL.md, not on AIOS_TARGETS."""
        policy = self.policy(skill.metadata.models, source=skill.path, field="metadata.models")
        return policy.model_copy(update={"deadline": skill.metadata.deadline})

    def hedge_policy(self) -> HedgePolicy:
        """The hedging rules from AIOS_HEDGE* (a fixed delay, or the derived one within its bounds)."""
        return HedgePolicy(enabled=self.hedge, after=self.hedge_after, min_after=self.hedge_min, max_after=self.hedge_max)


def _unknown_providers(unknown: list[str], known: set[str]) -> str:
    return (
        f"unknown provider(s) {', '.join(unknown)} (known: {', '.join(sorted(known))}); "
        "add an endpoint to AIOS_EXTRA_ENDPOINTS"
    )


def parse_targets(specs: list[str], source: str | Path = "AIOS_TARGETS", field: str | None = None) -> tuple[Target, ...]:
    """`provider:model[@window]` entries as targets; a malformed one is a ConfigError naming `source`."""
    targets = []
    for raw in specs:
        spec = raw.strip()
        if not spec:
            continue
        window: int | None = None
        if "@" in spec:
            spec, _, text = spec.partition("@")
            if not text.isdigit() or int(text) <= 0:
                raise ConfigError(source, f"'{raw.strip()}': the context window after '@' must be a positive whole number of tokens, not '{text}'", field)
            window = int(text)
        provider, sep, model = spec.partition(":")
        if not sep or not provider.strip() or not model.strip():
            raise ConfigError(source, f"'{raw.strip()}' is not of the form provider:model[@context_window]", field)
        provider, model = provider.strip(), model.strip()
        targets.append(Target(provider=provider, model=model, context_window=window or KNOWN_WINDOWS.get(model, 200_000)))
    if not targets:
        raise ConfigError(source, "names no target (expected provider:model, comma-separated)", field)
    return tuple(targets)


@lru_cache(maxsize=1)
def _cached() -> Settings:
    return load_settings()


def variable(loc: tuple) -> tuple[str, str]:
    """(environment variable, where inside its value) of a validation error's location."""
    name = "AIOS_" + str(loc[0]).upper() if loc else "AIOS_*"
    inner = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:]).lstrip(".")
    return name, inner


def settings_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(variable, problem) for every error, worded for the person who set the variable."""
    out = []
    for err in exc.errors():
        name, inner = variable(tuple(err["loc"]))
        message = err["msg"].removeprefix("Value error, ")
        out.append((name, f"{inner}: {message}" if inner else message))
    return out


def load_settings() -> Settings:
    """Settings from the environment (and `<project root>/.env`); the first bad variable is one ConfigError."""
    load_env_file()
    try:
        return Settings()
    except ValidationError as exc:
        problems = settings_problems(exc)
        name, problem = problems[0]
        more = f" (and {len(problems) - 1} more: `aios doctor` lists them)" if len(problems) > 1 else ""
        raise ConfigError(name, problem + more) from None


def load_settings_leniently() -> tuple[Settings, list[tuple[str, str]]]:
    """Settings with every bad variable at its default, and the list of bad ones (for `aios doctor`)."""
    load_env_file()
    problems: list[tuple[str, str]] = []
    defaults: dict[str, Any] = {}
    for _ in range(len(Settings.model_fields)):
        try:
            return Settings(**defaults), problems
        except ValidationError as exc:
            fields = {str(err["loc"][0]) if err["loc"] else "" for err in exc.errors()}
            if not fields <= set(Settings.model_fields) - set(defaults):
                raise  # a default itself fails: a bug, not a variable's fault
            defaults |= {f: Settings.model_fields[f].get_default(call_default_factory=True) for f in fields}
            problems += settings_problems(exc)
    return Settings(**defaults), problems


def get_settings() -> Settings:
    return _cached()


def reload_settings() -> Settings:
    _cached.cache_clear()
    return _cached()

