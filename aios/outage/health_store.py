"""Where the health snapshot lives: the state store, so every process and machine reads the same one."""

from __future__ import annotations

from aios.core.health import HealthSnapshot
from aios.state import StateError, open_store

HEALTH_TABLE = "health"
SNAPSHOT_KEY = "snapshot"


def read_snapshot() -> HealthSnapshot:
    """The last snapshot, or an empty one (everything `unknown`, i.e. usable) before the first check."""
    try:
        record = open_store().get(HEALTH_TABLE, SNAPSHOT_KEY)
    except StateError:
        return HealthSnapshot()
    return HealthSnapshot.model_validate(record.data) if record else HealthSnapshot()


def write_snapshot(snapshot: HealthSnapshot) -> None:
    open_store().upsert(HEALTH_TABLE, SNAPSHOT_KEY, snapshot.model_dump(mode="json"))
