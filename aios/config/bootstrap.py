"""Environment defaults applied before Prefect is imported (Prefect reads its settings at import)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_FILE = ".env"


def project_root() -> Path:
    """The project: `AIOS_HOME`, else the current directory."""
    return Path(os.environ.get("AIOS_HOME") or os.getcwd()).expanduser().resolve()


def result_storage(home: Path) -> Path:
    """Where Prefect persists task and flow results (cached answers, final states) by default."""
    return home / ".aios" / "results"


def load_env_file() -> Path | None:
    """Put `<project root>/.env` into the environment, never over a variable already set.

    One source for every setting: `AIOS_*`, `AIOS_STATE_*` and the SDKs' own keys are all read
    from the environment, and the file only fills in what the environment leaves unset.
    """
    path = project_root() / ENV_FILE
    if not path.is_file():
        return None
    from dotenv import dotenv_values

    from aios.errors import ConfigError

    try:
        values = dotenv_values(path, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot read it: {getattr(exc, 'strerror', None) or exc.__class__.__name__}") from None
    for key, value in values.items():
        if value is not None:
            os.environ.setdefault(key, value)
    return path


def prepare_environment() -> None:
    """Keep Prefect's embedded database inside the project, quiet about the internet it can't reach, and
    on the project's kept server when one runs."""
    try:
        load_env_file()
    except Exception:  # noqa: BLE001 - runs at import; loading the settings reports it as one line
        pass
    home = project_root()
    os.environ.setdefault("PREFECT_HOME", str(home / ".aios" / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    # One result storage for every process of the project (CLI, workers and the runs they start, drainers):
    # a paid answer cached by one process is found by the retry in another (Prefect's default follows PREFECT_HOME).
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(result_storage(home)))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_UI_SHOW_PROMOTIONAL_CONTENT", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Prefect gives its temporary server 20 s to start: a loaded 2-core machine needs more (it failed with exit 3).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
    from aios.config.kept_server import use_kept_server

    use_kept_server(home, Path(os.environ["PREFECT_HOME"]))  # `aios server start`: no temporary server per command
