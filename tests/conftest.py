"""One stack per test session: the emulators, a Prefect server on PostgreSQL, and (on demand) workers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aios.config.bootstrap import prepare_environment

ROOT = Path(__file__).resolve().parents[1]
prepare_environment()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """Emulators + a real Prefect server backed by PostgreSQL, started once for the whole session.

    The database `aios_test_<pid>` is dropped at the end, and those of sessions whose process is gone first.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from aios.config.settings import reload_settings
    from aios.drill.stack import LocalStack, session_database

    with session_database("aios_test_") as database, LocalStack(
        project=ROOT, database_url=database, workdir=tmp_path_factory.mktemp("stack"), scheduler=False, ui=True
    ) as running:
        saved = dict(os.environ)
        os.environ.update(running.env)
        os.environ["AIOS_MEMORY_EXTRACTION"] = "false"  # on only in the memory test: keeps request counts exact
        reload_settings()
        with temporary_settings(updates={PREFECT_API_URL: running.api_url}):
            yield running
            flush_prefect()
        os.environ.clear()
        os.environ.update(saved)
        reload_settings()


def flush_prefect() -> None:
    """Send queued logs and events before the server stops (no 'Error logging to API' at exit)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=10)


@pytest.fixture
def emulator(stack):
    """Fault control for the session's emulators, reset before and after every test."""
    from aios.emulators.control import EmulatorControl
    from aios.config.runtime import reset_runtime

    control = EmulatorControl(stack.emulator_url)
    forget_health()
    control.clear_faults()
    control.clear_status()
    control.clear_requests()
    reset_runtime()
    yield control
    control.clear_faults()
    control.clear_status()
    reset_runtime()


def forget_health():
    """Each test starts with no health history and no open alert burst."""
    from aios.outage import health_store

    health_store.forget_health()  # the shared records and the Prefect Variable


@pytest.fixture
def settings_env(monkeypatch):
    """Set AIOS_* variables for one test; the runtime re-reads them."""
    from aios.config.runtime import reset_runtime
    from aios.config.settings import reload_settings

    def apply(**values):
        for key, value in values.items():
            monkeypatch.setenv(key, str(value))
        reload_settings()
        reset_runtime()

    yield apply
    monkeypatch.undo()
    reload_settings()
    reset_runtime()


@pytest.fixture(scope="session")
def deployed(stack):
    """The skills deployed to the work pool `aios` and one process worker polling it."""
    stack.run("deploy", timeout=300)
    stack.start_workers(1)
    return stack


@pytest.fixture
def worker_polls(deployed):
    """`await worker_polls(n)`: returns once the worker has polled the work pool n times from now on.

    Evidence, not a sleep: every poll stamps `last_polled` on each queue of the pool, the paused
    `deferred` queue included, so a run still scheduled after n polls was seen and left alone.
    """
    import asyncio
    import time
    from datetime import UTC, datetime

    from prefect.client.orchestration import get_client

    from aios.config.settings import get_settings

    async def wait(polls: int = 2, timeout: float = 60) -> list[datetime]:
        settings = get_settings()
        since, seen = datetime.now(UTC), []
        deadline = time.monotonic() + timeout
        async with get_client() as client:
            while time.monotonic() < deadline:
                queue = await client.read_work_queue_by_name(settings.deferred_queue, work_pool_name=settings.work_pool)
                if queue.last_polled and queue.last_polled > since and queue.last_polled not in seen:
                    seen.append(queue.last_polled)
                    if len(seen) == polls:
                        return seen
                await asyncio.sleep(0.2)
        raise AssertionError(f"the worker polled {len(seen)} of {polls} times in {timeout:.0f} s: is it running?")

    return wait


@pytest.fixture
def alert_inbox(monkeypatch):
    """A local HTTP receiver for Apprise's json:// alerts; yields the list of received alerts."""
    import json as _json

    from aios.config.settings import reload_settings
    from tests.helpers import receiving_posts

    received: list[dict] = []
    with receiving_posts(lambda path, headers, body: received.append(_json.loads(body or b"{}"))) as url:
        monkeypatch.setenv("AIOS_ALERT_URLS", f"json://{url.removeprefix('http://')}/alerts")
        reload_settings()
        yield received
    monkeypatch.undo()
    reload_settings()
