"""`aios status`, `deferred`, `resume`, `drain`: provider health and the deferred queue of an outage."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.table import Table

from aios.cli.console import JsonFlag, console, fail
from aios.config.settings import get_settings


def status_command(
    check: Annotated[bool, typer.Option("--check", help="Run the status-check flow now first.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Provider and model health, breaker states, and the deferred queue."""
    from aios.outage import deferral, health_store

    if check:
        from aios.config.entrypoints import STATUS_CHECK

        health_store.require_shared_state(get_settings())  # the flow would refuse too; here it is one line, exit 2
        asyncio.run(STATUS_CHECK.load()())
    snapshot = health_store.read_snapshot()
    paused, parked, missing = asyncio.run(_deferred_queue())
    data = {
        "checked_at": snapshot.checked_at.isoformat(),
        "providers": {k: v.value for k, v in snapshot.providers.items()},
        "models": {k: v.value for k, v in snapshot.models.items()},
        "deferred_queue_paused": paused,
        "parked_runs": parked,
        "deferred_queue_problem": missing,
    }
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table("subject", "health", title=f"health at {data['checked_at']}")
    for subject, health in {**data["providers"], **data["models"]}.items():
        table.add_row(subject, health)
    console.print(table)
    queue = f"unknown ({missing})" if paused is None else ("paused" if paused else "running")
    console.print(f"deferred queue: {queue}; parked runs: {parked if parked is not None else '-'}", markup=False, highlight=False, soft_wrap=True)


async def _deferred_queue() -> tuple[bool | None, int | None, str | None]:
    """(paused, parked runs, what is missing): a missing server, pool or queue, and how to create it."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    from aios.outage import deferral

    settings = get_settings()
    pool, queue = settings.work_pool, settings.deferred_queue
    if not PREFECT_API_URL.value():
        return None, None, "PREFECT_API_URL is not set: no Prefect server to ask"
    try:
        async with get_client() as client:
            try:
                await client.read_work_pool(pool)
            except ObjectNotFound:
                return None, None, f"the Prefect server has no work pool '{pool}'; `aios deploy` creates it"
            try:
                await client.read_work_queue_by_name(queue, work_pool_name=pool)
            except ObjectNotFound:
                return None, None, f"work pool '{pool}' has no queue '{queue}'; `aios deploy` creates it"
        return await deferral.is_paused(), len(await deferral.parked_runs()), None
    except (httpx.HTTPError, OSError, RuntimeError) as exc:
        return None, None, f"no Prefect server at {PREFECT_API_URL.value()}: {type(exc).__name__}"


def deferred_command(as_json: JsonFlag = False) -> None:
    """List runs parked in the deferred queue."""
    from aios.outage import deferral

    runs = asyncio.run(deferral.parked_runs())
    rows = [
        {"id": str(r.id), "name": r.name, "state": r.state_name, "parameters": r.parameters, "created": r.created.isoformat() if r.created else None}
        for r in runs
    ]
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table("flow run", "name", "state", "created", title=f"{len(rows)} parked run(s)")
    for r in rows:
        table.add_row(r["id"], r["name"], r["state"], r["created"] or "")
    console.print(table)


def resume_command() -> None:
    """Resume the deferred queue by hand (the status-check flow does it when Claude is healthy)."""
    from aios.outage import deferral

    changed = asyncio.run(deferral.set_paused(False))
    console.print("deferred queue resumed" if changed else "deferred queue was already running")


def drain_command(
    concurrency: Annotated[int, typer.Option(help="Parked runs executed at once in this process.")] = 8,
) -> None:
    """Run the parked runs of the (resumed) deferred queue in this process, faster than a process worker."""
    from aios.config.runtime import get_runtime
    from aios.outage import deferral
    from aios.config.entrypoints import SKILL_FLOWS
    from aios.outage.drainer import drain_deferred
    from aios.outage.health_store import require_shared_state

    require_shared_state(get_runtime().settings)  # on a fleet every drained run would refuse: say why once
    if asyncio.run(deferral.is_paused()):
        fail("the deferred queue is paused (Claude is not healthy yet); `aios resume` to force it")
    stats = asyncio.run(drain_deferred(SKILL_FLOWS.load()(), concurrency=concurrency))
    console.print(f"drained {stats.started} run(s): {stats.completed} completed, {stats.failed} not completed")
