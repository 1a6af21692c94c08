"""Where the fleet's operational state lives: the health snapshot, the status check's own history and the
alert-burst claims, so every worker on every host decides from the same facts.

On one host the state store holds them (the JSON file by default). On a fleet (`AIOS_FLEET=multi`, or
`PREFECT_API_URL` pointing at a server off this machine) a JSON file would give each host its own
truth — host B would never learn that host A's status check marked Claude down — so they move to the
one thing every worker already shares: the Prefect server, as Variables. A Sheets or Airtable state
store is shared too, so it keeps them. Run records have no Variable form, and circuit breakers in their
default local file are one host's: a fleet with either is refused (see `fleet_problem`) by `aios doctor`
and by every run, status check and drain before its first model call.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

import httpx
from pydantic import BaseModel, Field, ValidationError

from aios.core.health import Health, HealthSnapshot, HealthState
from aios.state import StateError, load_state_settings, open_store

if TYPE_CHECKING:
    from aios.config.settings import Settings

HEALTH_TABLE = "health"
SNAPSHOT_KEY = "snapshot"
STATE_KEY = "state"
# Prefect Variable names (lowercase, dashes): one per record, the JSON value is the record's data.
VARIABLE_PREFIX = "aios-"
VIEW_VARIABLE = "aios_provider_health"  # what the UI, `aios status` and every flow read
NO_SIGNAL = "no signal reached (no status page answered and no call or probe)"
DETAIL_CHARS = 160  # a Prefect Variable holds at most 5000 characters

FleetMode = Literal["single", "multi"]


class FleetError(StateError):
    """A fleet configured so that hosts would not share their operational state."""


def fleet_mode() -> FleetMode:
    """`AIOS_FLEET` (single|multi) if set; else multi when the Prefect API is not on this machine."""
    value = (os.environ.get("AIOS_FLEET") or "").strip().lower()
    if value in ("single", "multi"):
        return value  # type: ignore[return-value]
    if value:
        raise FleetError(f"AIOS_FLEET: expected 'single' or 'multi', got {value!r}")
    return "multi" if _remote_api(os.environ.get("PREFECT_API_URL") or _prefect_api_url()) else "single"


def _prefect_api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or ""


def _remote_api(url: str) -> bool:
    host = urlparse(url).hostname if url else None
    if not host or host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name other than localhost: another machine


def on_prefect_server() -> bool:
    """True when health and alert bursts live in Prefect Variables (a fleet on the JSON state store)."""
    return fleet_mode() == "multi" and load_state_settings().backend == "json"


def fleet_problem(settings: Settings) -> str | None:
    """Why this fleet's hosts would not share their operational state, or None when they do (or there is one host).

    The one rule `aios doctor` reports and every run, status check and drain obeys before its first model call:
    on a fleet neither the run records (the state store) nor the circuit breakers may stay in a local file.
    Health and alert bursts never do: on the JSON store they move to Prefect Variables (`on_prefect_server`).
    """
    from aios.outage.breaker_store import configured_kind

    try:
        if fleet_mode() == "single":
            return None
        state = load_state_settings()
    except StateError as exc:
        return str(exc)
    records = []  # what keeps run records in a local file
    if state.backend == "json":
        records.append("AIOS_STATE_BACKEND=json")
    if on_json := sorted(skill for skill, backend in state.skill_backends.items() if backend == "json"):
        records.append(f"AIOS_STATE_SKILL_BACKENDS puts {', '.join(on_json)} on json")
    breakers = []  # what keeps circuit breakers in a local file
    if configured_kind(settings.breaker_store, settings.breaker_redis_url) == "file":
        breakers.append("AIOS_BREAKER_STORE=file" if settings.breaker_store else "breakers in the default local file")
    if not records and not breakers:
        return None
    why = "AIOS_FLEET=multi" if os.environ.get("AIOS_FLEET") else "PREFECT_API_URL is not on this machine"
    lost, fixes = [], []
    if records:
        lost.append("run records, so the status check would miss the other hosts' failed calls")
        fixes.append("AIOS_STATE_BACKEND=sheets or airtable")
    if breakers:
        lost.append("circuit breakers, so it would keep calling a target another host found dead")
        fixes.append("AIOS_BREAKER_REDIS_URL")
    return f"{' and '.join(records + breakers)} on a fleet ({why}): each host would keep its own {' and '.join(lost)}; set {' and '.join(fixes)}"


def require_shared_state(settings: Settings) -> None:
    """Raise `FleetError` (the doctor's one line) when `fleet_problem` finds one."""
    if problem := fleet_problem(settings):
        raise FleetError(problem)


# -- records -------------------------------------------------------------------------------------


def _variable_name(table: str, key: str) -> str:
    return VARIABLE_PREFIX + f"{table}-{key}".replace(":", "-").replace("_", "-").lower()


def _read(table: str, key: str) -> dict[str, Any] | None:
    if on_prefect_server():
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            variable = client.read_variable_by_name(_variable_name(table, key))
        return variable.value if variable is not None and isinstance(variable.value, dict) else None
    record = open_store().get(table, key)
    return record.data if record else None


def _write(table: str, key: str, data: dict[str, Any]) -> None:
    if on_prefect_server():
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import VariableCreate, VariableUpdate
        from prefect.exceptions import ObjectAlreadyExists

        name = _variable_name(table, key)
        with get_client(sync_client=True) as client:
            try:
                client.create_variable(VariableCreate(name=name, value=data, tags=["aios"]))
            except ObjectAlreadyExists:
                client.update_variable(VariableUpdate(name=name, value=data))
        return
    open_store().upsert(table, key, data)


def claim(table: str, key: str, data: dict[str, Any], still_open: Any) -> bool:
    """Take `key` for this process unless its current value is `still_open(value)`; False when someone else holds it.

    On the state store a version check makes the claim exclusive. On the Prefect server, creating a
    Variable is: an expired claim is deleted first, and of two hosts racing to re-create it one gets 409.
    """
    if on_prefect_server():
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import VariableCreate
        from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

        name = _variable_name(table, key)
        with get_client(sync_client=True) as client:
            current = client.read_variable_by_name(name)
            if current is not None:
                if isinstance(current.value, dict) and still_open(current.value):
                    return False
                try:
                    client.delete_variable_by_name(name)
                except ObjectNotFound:
                    pass  # another host expired it first; the create below decides
            try:
                client.create_variable(VariableCreate(name=name, value=data, tags=["aios"]))
            except ObjectAlreadyExists:
                return False
        return True
    from aios.state import VersionConflict

    store = open_store()
    record = store.get(table, key)
    if record is not None and still_open(record.data):
        return False
    try:
        store.upsert(table, key, data, expected_version=record.version if record else 0)
    except VersionConflict:
        return False
    return True


def forget(table: str, key: str) -> None:
    """Remove one record (tests start from no history)."""
    _forget_cached()
    if on_prefect_server():
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        with get_client(sync_client=True) as client:
            try:
                client.delete_variable_by_name(_variable_name(table, key))
            except ObjectNotFound:
                pass
        return
    open_store().delete(table, key)


# -- the health snapshot (read by every skill run) and the status check's history -----------------


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
            variable = client.read_variable_by_name(VIEW_VARIABLE)
    except (httpx.HTTPError, OSError, RuntimeError):
        return None
    return _view_of(variable)


def _view_of(variable: Any) -> HealthView | None:
    """The view a Prefect Variable holds (None: no variable yet, or not a view)."""
    if variable is None:
        return None
    try:
        return HealthView.model_validate(variable.value)
    except ValidationError:
        return None


async def aread_view() -> HealthView | None:
    """`read_view` for a skill run: on the run's own async client (a sync client per run costs its TLS set-up, ~20-100 ms)."""
    if not _api_configured():
        return None
    from prefect.client.orchestration import get_client

    try:
        async with get_client() as client:  # inside a flow run: the run's client, no new connection pool
            variable = await client.read_variable_by_name(VIEW_VARIABLE)
    except (httpx.HTTPError, OSError, RuntimeError):
        return None
    return _view_of(variable)


def read_snapshot() -> HealthSnapshot:
    """The last snapshot: the published view on the Prefect server, else the shared record, else an empty
    one (everything `unknown`, i.e. usable) before the first check."""
    view = read_view()
    if view is not None:
        return view.snapshot()
    return _stored_snapshot()


async def aread_snapshot() -> HealthSnapshot:
    """`read_snapshot` without blocking the event loop (what every skill run reads before its first call).

    Runs that start within `SNAPSHOT_TTL` of each other in one process share one read: the snapshot
    changes once a minute at most (the status check), and a drain starts many runs a second.
    """
    import asyncio
    import time

    global _cached
    where = os.environ.get("PREFECT_API_URL") or _prefect_api_url()
    if _cached is not None and _cached[0] == where and time.monotonic() - _cached[1] < SNAPSHOT_TTL:
        return _cached[2]
    view = await aread_view()
    if view is not None:
        snapshot = view.snapshot()
    else:
        snapshot = await asyncio.to_thread(_stored_snapshot)  # a Sheets or Airtable store answers over the network
    _cached = (where, time.monotonic(), snapshot)
    return snapshot


SNAPSHOT_TTL = 1.0  # seconds
_cached: tuple[str, float, HealthSnapshot] | None = None


def _forget_cached() -> None:
    """This process changed the health: its next run reads it afresh."""
    global _cached
    _cached = None


def _stored_snapshot() -> HealthSnapshot:
    try:
        data = _read(HEALTH_TABLE, SNAPSHOT_KEY)
    except StateError:
        return HealthSnapshot()
    return HealthSnapshot.model_validate(data) if data else HealthSnapshot()


def write_snapshot(snapshot: HealthSnapshot) -> None:
    _forget_cached()
    _write(HEALTH_TABLE, SNAPSHOT_KEY, snapshot.model_dump(mode="json"))


async def publish(view: HealthView) -> None:
    """Write the view to the Prefect Variable the UI shows under Variables (the snapshot is persisted apart)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import VariableCreate, VariableUpdate

    _forget_cached()
    value = view.model_dump(mode="json")
    async with get_client() as client:
        if await client.read_variable_by_name(VIEW_VARIABLE) is None:
            await client.create_variable(VariableCreate(name=VIEW_VARIABLE, value=value, tags=["aios", "health"]))
        else:
            await client.update_variable(VariableUpdate(name=VIEW_VARIABLE, value=value))


def forget_health() -> None:
    """Drop every trace of past health and open alert bursts (the drill and the tests start from a clean slate)."""
    _forget_cached()
    for table, key in ((HEALTH_TABLE, SNAPSHOT_KEY), (HEALTH_TABLE, STATE_KEY), ("alerts", "failover:anthropic")):
        forget(table, key)
    if _api_configured():
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        try:
            with get_client(sync_client=True) as client:
                client.delete_variable_by_name(VIEW_VARIABLE)
        except ObjectNotFound:
            pass


def read_state() -> tuple[HealthState, datetime | None]:
    """The status check's last decision and when it was made (None before the first check)."""
    data = _read(HEALTH_TABLE, STATE_KEY)
    if not data:
        return HealthState(), None
    return HealthState.model_validate(data["state"]), datetime.fromisoformat(data["checked_at"])


def write_state(state: HealthState, checked_at: datetime) -> None:
    _write(HEALTH_TABLE, STATE_KEY, {"state": state.model_dump(mode="json"), "checked_at": checked_at.isoformat()})
