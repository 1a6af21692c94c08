"""Settings from the environment (prefix `AIOS_`) and an optional `.env` file in the project root.

Provider keys and base URLs are NOT aios settings: each SDK's own variables apply
(`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_BASE_URL`), and a further
OpenAI-compatible endpoint names the variables that hold its key and URL.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aios.core.policy import (
    ANTHROPIC,
    DEFAULT_TARGETS,
    OPENAI,
    BreakerPolicy,
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


def project_root() -> Path:
    return Path(os.environ.get("AIOS_HOME") or os.getcwd()).resolve()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIOS_", env_file=".env", extra="ignore")

    home: Path = Field(default_factory=project_root)
    targets: str | None = Field(default=None, description="provider:model[@window], comma-separated")
    extra_endpoints: list[Endpoint] = Field(default_factory=list, description="further OpenAI-compatible endpoints")
    connect_timeout: float = 3.0
    read_timeout: float = 120.0
    max_retry_after: float = 2.0
    reasks: int = 1
    breaker_threshold: int = 3
    breaker_cooldown: float = 30.0
    anthropic_output: Literal["json_schema", "tool"] = "json_schema"
    max_tokens: int = 4096
    context_max_chars: int = 60_000
    work_pool: str = "aios"
    deferred_queue: str = "deferred"
    default_queue: str = "default"
    json_logs: bool = False
    memory_dir: Path | None = None  # default <home>/memory
    memory_extraction: bool = True  # for skills whose metadata says memory: "true"
    # health checks and alerts
    status_claude_url: str = "https://status.claude.com"
    status_openai_url: str | None = "https://status.openai.com"
    status_claude_component: str = r"Claude API"
    status_openai_component: str = r"Chat Completions|Responses"
    status_timeout: float = 5.0
    probe: bool = True
    probe_timeout: float = 5.0
    health_recover_after: int = 2
    alert_urls: str | None = None
    alert_burst_seconds: float = 600.0

    @field_validator("home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.resolve()

    @property
    def skills_dir(self) -> Path:
        return self.home / "skills"

    @property
    def memory_path(self) -> Path:
        return (self.memory_dir or self.home / "memory").resolve()

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        return {e.name: e for e in [*DEFAULT_ENDPOINTS, *self.extra_endpoints]}

    def policy(self, override: list | None = None) -> FallbackPolicy:
        """The fallback policy: a skill's own `models` list, else AIOS_TARGETS, else the defaults."""
        if override:
            targets = tuple(_target(str(spec)) for spec in override)
        elif self.targets:
            targets = tuple(_target(part) for part in self.targets.split(",") if part.strip())
        else:
            targets = DEFAULT_TARGETS
        unknown = sorted({t.provider for t in targets} - set(self.endpoints) - set(AGENT_CLI_PROVIDERS))
        if unknown:
            raise ConfigError("AIOS_TARGETS", f"unknown provider(s) {', '.join(unknown)}; add them to AIOS_EXTRA_ENDPOINTS")
        return FallbackPolicy(
            targets=targets,
            timeouts=Timeouts(connect=self.connect_timeout, read=self.read_timeout),
            max_retry_after=self.max_retry_after,
            reasks=self.reasks,
            breaker=BreakerPolicy(failure_threshold=self.breaker_threshold, cooldown=self.breaker_cooldown),
        )


def _target(spec: str) -> Target:
    spec = spec.strip()
    window: int | None = None
    if "@" in spec:
        spec, _, raw = spec.partition("@")
        window = int(raw)
    provider, sep, model = spec.partition(":")
    if not sep or not provider or not model:
        raise ConfigError("AIOS_TARGETS", f"'{spec}' is not of the form provider:model")
    return Target(provider=provider, model=model, context_window=window or KNOWN_WINDOWS.get(model, 200_000))


@lru_cache(maxsize=1)
def _cached() -> Settings:
    return load_settings()


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        field = "AIOS_" + "_".join(str(p) for p in err["loc"]).upper()
        raise ConfigError("environment", err["msg"], field) from None


def get_settings() -> Settings:
    return _cached()


def reload_settings() -> Settings:
    _cached.cache_clear()
    return _cached()
