"""Where the health snapshot lives: the Prefect Variable `aios_provider_health`, which the UI, `aios status`
and every flow read, so they never disagree; the state store keeps a copy for a machine with no Prefect server.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from pydantic import BaseModel, Field, ValidationError

from aios.core.health import Health, HealthSnapshot, HealthState
from aios.state import StateError, open_store

HEALTH_TABLE = "health"
SNAPSHOT_KEY = "snapshot"
VARIABLE = "aios_provider_health"
NO_SIGNAL = "no signal reached (no status page answered and no call or probe)"
DETAIL_CHARS = 160  # a Prefect Variable holds at most 5000 characters


class SubjectHealth(BaseModel):
    health: Health
    since: datetime  # when it last changed to this health
    detail: str = ""


class HealthView(BaseModel):
    """What the last status check published: each provider and model, how healthy, since when, why."""

    checked_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subjects: dict[str, SubjectHealth] = Field(default_factory=dict)
    deferred_queue_paused: bool | None = None

    def snapshot(self) -> HealthSnapshot:
        providers = {k: v.health for k, v in self.subjects.items() if ":" not in k}
        models = {k: v.health for k, v in self.subjects.items() if ":" in k}
        return HealthSnapshot(providers=providers, models=models, checked_at=self.checked_at)

    def unhealthy(self) -> list[str]:
        """`anthropic down since 12:03:04 UTC (status page: major outage)`, worst first."""
        rank = {Health.down: 0, Health.degraded: 1}
        bad = sorted((v for v in self.subjects.items() if v[1].health in rank), key=lambda kv: (rank[kv[1].health], kv[0]))
        return [
            f"{k} {v.health.value} since {v.since:%Y-%m-%d %H:%M:%S} UTC" + (f" ({v.detail})" if v.detail else "")
            for k, v in bad
        ]

    def rows(self) -> list[dict[str, str]]:
        """The provider-health table: one row per subject, `unknown` ones saying that no signal reached them."""
        return [
            {
                "subject": k,
                "health": v.health.value,
                "since": f"{v.since:%Y-%m-%d %H:%M:%S} UTC",
                "detail": v.detail or (NO_SIGNAL if v.health is Health.unknown else ""),
            }
            for k, v in sorted(self.subjects.items())
        ]


def build_view(
    state: HealthState, subjects: list[str], previous: HealthView | None, now: datetime, paused: bool | None
) -> HealthView:
    """The published view: every subject in `subjects` (unknown when no signal reached it), `since`
    carried over from the previous view while the health stays the same."""
    view = HealthView(checked_at=now, deferred_queue_paused=paused)
    for subject in sorted(set(subjects) | set(state.subjects)):
        tracked = state.subjects.get(subject)
        health = tracked.health if tracked else Health.unknown
        before = previous.subjects.get(subject) if previous else None
        since = before.since if before and before.health is health else now
        detail = (tracked.detail if tracked else "")[:DETAIL_CHARS]
        view.subjects[subject] = SubjectHealth(health=health, since=since, detail=detail)
    return view


def _api_configured() -> bool:
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def read_view() -> HealthView | None:
    """The published view from the Prefect Variable (None: no server, no variable yet, or unreadable)."""
    if not _api_configured():
        return None
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            variable = client.read_variable_by_name(VARIABLE)
    except (httpx.HTTPError, OSError, RuntimeError):
        return None
    if variable is None:
        return None
    try:
        return HealthView.model_validate(variable.value)
    except ValidationError:
        return None


def read_snapshot() -> HealthSnapshot:
    """The last snapshot: the Prefect Variable, else the state store's copy, else an empty one
    (everything `unknown`, i.e. usable) before the first check."""
    view = read_view()
    if view is not None:
        return view.snapshot()
    try:
        record = open_store().get(HEALTH_TABLE, SNAPSHOT_KEY)
    except StateError:
        return HealthSnapshot()
    return HealthSnapshot.model_validate(record.data) if record else HealthSnapshot()


async def publish(view: HealthView) -> None:
    """Write the view to the Prefect Variable (the UI shows it under Variables) and the store's copy."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import VariableCreate, VariableUpdate

    open_store().upsert(HEALTH_TABLE, SNAPSHOT_KEY, view.snapshot().model_dump(mode="json"))
    value = view.model_dump(mode="json")
    async with get_client() as client:
        if await client.read_variable_by_name(VARIABLE) is None:
            await client.create_variable(VariableCreate(name=VARIABLE, value=value, tags=["aios", "health"]))
        else:
            await client.update_variable(VariableUpdate(name=VARIABLE, value=value))


def forget() -> None:
    """Drop every trace of past health (the drill and the tests start from a clean slate)."""
    store = open_store()
    for key in (SNAPSHOT_KEY, "state"):
        store.delete(HEALTH_TABLE, key)
    if _api_configured():
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        try:
            with get_client(sync_client=True) as client:
                client.delete_variable_by_name(VARIABLE)
        except ObjectNotFound:
            pass
