"""State settings (env prefix ``AIOS_STATE_``).

Paths are relative to the project root: ``$AIOS_HOME`` if set, else the
current directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aios.config.bootstrap import project_root

from .base import StateError
from .retry import RetryPolicy

Backend = Literal["json", "sheets", "airtable"]
BACKENDS: tuple[str, ...] = ("json", "sheets", "airtable")


class StateSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AIOS_STATE_", extra="ignore", populate_by_name=True, frozen=True  # shared: see load_state_settings
    )

    # -- which backend ----------------------------------------------------------------
    backend: Backend = "json"
    #: per-skill override, e.g. AIOS_STATE_SKILL_BACKENDS='{"research-lead":"airtable"}'
    skill_backends: dict[str, Backend] = Field(default_factory=dict)

    # -- JSON (embedded default) --------------------------------------------------------
    path: Path | None = None  # default <root>/state/aios.json

    # -- journal for writes made while a remote backend is down ------------------------
    journal_path: Path | None = None  # default <root>/state/journal.jsonl
    #: after a backend is found down, skip it (journal directly) for this many seconds
    probe_interval: float = Field(default=5.0, ge=0)

    # -- retries on 429 / 5xx / connection errors ----------------------------------------
    retry_attempts: int = Field(default=5, ge=1)
    retry_initial_delay: float = Field(default=0.5, ge=0)
    retry_max_delay: float = Field(default=8.0, ge=0)
    retry_max_total: float = Field(default=30.0, ge=0)  # the bound, in seconds
    retry_jitter: float = Field(default=0.5, ge=0)
    http_timeout: float = Field(default=30.0, gt=0)

    # -- locks and client-side pacing (shared by every process on this host) ------------
    #: where the per-spreadsheet/base write locks live (default: host-wide temp folder, so
    #: processes with different AIOS_HOME still serialize their version checks)
    lock_path: Path | None = None
    #: where the pacing slots live (default: host-wide temp folder)
    pacing_path: Path | None = None
    #: published limits: Airtable 5 requests/s per base and 50/s per token; Google Sheets
    #: 60 reads and 60 writes per minute per user. 0 turns that pacing off.
    airtable_requests_per_second: int = Field(default=5, ge=0)
    airtable_token_requests_per_second: int = Field(default=50, ge=0)
    sheets_reads_per_minute: int = Field(default=60, ge=0)
    sheets_writes_per_minute: int = Field(default=60, ge=0)
    #: multiplies every rate-limit window (tests against an emulator with scaled-down windows)
    rate_window_scale: float = Field(default=1.0, gt=0)

    # -- Google Sheets ------------------------------------------------------------------
    #: spreadsheet key or full URL
    sheets_spreadsheet: str | None = None
    #: service-account JSON or OAuth authorized-user JSON
    sheets_credentials_file: Path | None = None
    #: a ready OAuth access token (alternative to the credentials file)
    sheets_token: SecretStr | None = None
    #: override https://sheets.googleapis.com (emulator)
    sheets_api_url: str | None = None
    #: override the OAuth token endpoint of the credentials file (emulator: <api url>/token)
    sheets_token_uri: str | None = None

    # -- Airtable -----------------------------------------------------------------------
    airtable_base_id: str | None = None
    airtable_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AIOS_STATE_AIRTABLE_TOKEN", "AIRTABLE_API_KEY", "airtable_token"),
    )
    #: override https://api.airtable.com (emulator)
    airtable_api_url: str | None = None

    @field_validator("sheets_api_url", "airtable_api_url")
    @classmethod
    def _strip_slash(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else v

    # -- derived ------------------------------------------------------------------------
    def json_path(self) -> Path:
        return _rooted(self.path, Path("state") / "aios.json")

    def journal_file(self) -> Path:
        return _rooted(self.journal_path, Path("state") / "journal.jsonl")

    def lock_dir(self) -> Path:
        if self.lock_path:
            return _rooted(self.lock_path, Path("state") / "locks")
        return host_dir("locks")

    def pacing_dir(self) -> Path:
        return _rooted(self.pacing_path, Path("state") / "pacing") if self.pacing_path else host_dir("pacing")

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.retry_attempts,
            initial=self.retry_initial_delay,
            max_delay=self.retry_max_delay,
            max_total=self.retry_max_total,
            jitter=self.retry_jitter,
        )

    def backend_for(self, skill: str | None) -> str:
        if skill and skill in self.skill_backends:
            return self.skill_backends[skill]
        return self.backend


def host_dir(kind: str) -> Path:
    """A per-user folder shared by every aios process on this host (locks, pacing slots)."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"aios-state-{kind}-{uid}"


def _rooted(value: Path | None, default: Path) -> Path:
    p = Path(value).expanduser() if value else default
    return p if p.is_absolute() else project_root() / p


def load_state_settings() -> StateSettings:
    """Settings from the environment; a bad value is one line naming the variable (never its value).

    Built once per distinct set of the variables it reads (validating them costs ~1 ms a time, and
    every state operation asks); paths stay relative to the project root at the time of use.
    """
    key = tuple(sorted((k.lower(), v) for k, v in os.environ.items() if k.lower().startswith(_READS)))
    cached = _LOADED.get(key)
    if cached is None:
        cached = _LOADED[key] = _validate()
    return cached


_READS = ("aios_state_", "airtable_api_key", "airtable_token")  # every env name StateSettings reads
_LOADED: dict[tuple, StateSettings] = {}


def _validate() -> StateSettings:
    try:
        return StateSettings()
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err.get("loc", ())] or ["?"]
        head = loc[0].upper()
        name = head if head == "AIRTABLE_API_KEY" or head.startswith("AIOS_STATE_") else f"AIOS_STATE_{head}"
        detail = f" (at {'.'.join(loc[1:])})" if len(loc) > 1 else ""
        raise StateError(f"state settings: {name}{detail}: {err.get('msg')}") from None
