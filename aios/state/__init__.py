"""Skill state that lives outside the model: JSON file, Google Sheets or Airtable.

    from aios.state import open_store
    store = open_store(skill="research-lead")
    rec = store.upsert("leads", "acme", {"status": "new"})
    store.upsert("leads", "acme", {"status": "won"}, expected_version=rec.version)
"""

from __future__ import annotations

from .base import (
    RESERVED_FIELDS,
    BackendUnavailable,
    Record,
    StateError,
    Store,
    VersionConflict,
)
from .config import BACKENDS, StateSettings, project_root
from .json_store import JsonStore

__all__ = [
    "BACKENDS",
    "RESERVED_FIELDS",
    "BackendUnavailable",
    "JsonStore",
    "Record",
    "StateError",
    "StateSettings",
    "Store",
    "VersionConflict",
    "open_store",
    "project_root",
]


def open_store(
    backend: str | None = None,
    *,
    skill: str | None = None,
    settings: StateSettings | None = None,
) -> Store:
    """Open the configured store.

    ``backend`` wins if given; else the per-skill override
    (``AIOS_STATE_SKILL_BACKENDS``) for ``skill``; else ``AIOS_STATE_BACKEND``
    (default ``json``). Remote backends (sheets, airtable) come wrapped in the
    write journal: writes made while the backend is down are journaled and
    replayed in order when it answers again.
    """
    if settings is None:
        try:
            settings = StateSettings()
        except Exception as exc:  # pydantic ValidationError -> one line
            from pydantic import ValidationError

            if isinstance(exc, ValidationError):
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err.get("loc", ()))
                raise StateError(
                    f"state settings: AIOS_STATE_{loc.upper()}: {err.get('msg')}"
                ) from None
            raise
    name = (backend or settings.backend_for(skill)).strip().lower()
    if name == "json":
        return JsonStore(settings.json_path())
    if name == "sheets":
        from .journal import JournaledStore
        from .sheets_store import SheetsStore

        return JournaledStore(SheetsStore.from_settings(settings), settings)
    if name == "airtable":
        from .airtable_store import AirtableStore
        from .journal import JournaledStore

        return JournaledStore(AirtableStore.from_settings(settings), settings)
    raise StateError(
        f"state settings: unknown backend {name!r} (expected one of: {', '.join(BACKENDS)})"
    )
