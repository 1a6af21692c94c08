"""Environment defaults applied before Prefect is imported (Prefect reads its settings at import)."""

from __future__ import annotations

import os
from pathlib import Path


def prepare_environment() -> None:
    """Keep Prefect's embedded database inside the project and quiet about the internet it can't reach."""
    home = Path(os.environ.get("AIOS_HOME") or os.getcwd()).resolve()
    os.environ.setdefault("PREFECT_HOME", str(home / ".aios" / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_UI_SHOW_PROMOTIONAL_CONTENT", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
