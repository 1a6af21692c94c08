"""One stack per test session: the emulators, a Prefect server on PostgreSQL, and (on demand) workers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aios.bootstrap import prepare_environment

ROOT = Path(__file__).resolve().parents[1]
prepare_environment()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """Emulators + a real Prefect server backed by PostgreSQL, started once for the whole session."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from aios.settings import reload_settings
    from aios.stack import LocalStack, create_postgres_database

    database = create_postgres_database(f"aios_test_{os.getpid()}")
    with LocalStack(project=ROOT, database_url=database, workdir=tmp_path_factory.mktemp("stack")) as running:
        saved = dict(os.environ)
        os.environ.update(running.env)
        reload_settings()
        with temporary_settings(updates={PREFECT_API_URL: running.api_url}):
            yield running
        os.environ.clear()
        os.environ.update(saved)
        reload_settings()


@pytest.fixture
def emulator(stack):
    """Fault control for the session's emulators, reset before and after every test."""
    from aios.emulators.control import EmulatorControl
    from aios.runtime import reset_runtime

    control = EmulatorControl(stack.emulator_url)
    control.clear_faults()
    control.clear_status()
    control.clear_requests()
    reset_runtime()
    yield control
    control.clear_faults()
    control.clear_status()
    reset_runtime()


@pytest.fixture
def settings_env(monkeypatch):
    """Set AIOS_* variables for one test; the runtime re-reads them."""
    from aios.runtime import reset_runtime
    from aios.settings import reload_settings

    def apply(**values):
        for key, value in values.items():
            monkeypatch.setenv(key, str(value))
        reload_settings()
        reset_runtime()

    yield apply
    monkeypatch.undo()
    reload_settings()
    reset_runtime()
