"""Skill state that lives outside the model: JSON file, Google Sheets or Airtable.

    from aios.state import open_store
    store = open_store(skill="research-lead")
    rec = store.upsert("leads", "acme", {"status": "new"})
    store.upsert("leads", "acme", {"status": "won"}, expected_version=rec.version)
"""

from __future__ import annotations

import hashlib
import json
import os
import threading

from pydantic import SecretStr

from .base import (
    RESERVED_FIELDS,
    BackendUnavailable,
    Record,
    StateError,
    Store,
    VersionConflict,
)
from .config import BACKENDS, StateSettings, load_state_settings
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
    "clear_store_cache",
    "load_state_settings",
    "open_store",
]

# Remote stores are cached per process and settings: they hold an HTTP session, the
# spreadsheet/base metadata and -- during an outage -- the "known down" state that lets
# later writes go straight to the journal instead of paying the retry budget again.
_CACHE: dict[tuple[int, str, str], Store] = {}
_CACHE_LOCK = threading.Lock()


def _fingerprint(settings: StateSettings) -> str:
    data = {
        k: (v.get_secret_value() if isinstance(v, SecretStr) else v)
        for k, v in settings.model_dump(mode="python").items()
    }
    data["_resolved"] = [str(settings.json_path()), str(settings.journal_file()), str(settings.lock_dir())]
    if settings.sheets_credentials_file:  # a rotated credentials file gets a new client
        try:
            st = os.stat(settings.sheets_credentials_file)
            data["_credentials_file"] = [st.st_mtime_ns, st.st_size, st.st_ino]
        except OSError:
            pass
    return hashlib.sha256(json.dumps(data, default=str, sort_keys=True).encode()).hexdigest()


def clear_store_cache() -> None:
    """Forget cached remote stores (tests; after changing credentials files)."""
    with _CACHE_LOCK:
        stores = list(_CACHE.values())
        _CACHE.clear()
    for store in stores:
        store.close()


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
    replayed in order when it answers again. Remote stores are cached per
    process and settings, so calling ``open_store()`` per operation is cheap.
    """
    if settings is None:
        settings = load_state_settings()
    name = (backend or settings.backend_for(skill)).strip().lower()
    if name == "json":
        return JsonStore(settings.json_path())
    if name not in BACKENDS:
        raise StateError(
            f"state settings: unknown backend {name!r} (expected one of: {', '.join(BACKENDS)})"
        )
    key = (os.getpid(), name, _fingerprint(settings))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    store = _open_remote(name, settings)
    with _CACHE_LOCK:
        return _CACHE.setdefault(key, store)


def _open_remote(name: str, settings: StateSettings) -> Store:
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
