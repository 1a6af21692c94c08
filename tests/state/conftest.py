"""Fixtures for the state tests: each emulator runs ONCE per session in a subprocess on a free port.

Tests isolate themselves by creating a fresh spreadsheet / base (ids are random).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from aios.state import StateSettings, Store, clear_store_cache, open_store

SHEETS_TOKEN = "sheets-test-token"
AIRTABLE_TOKEN = "airtable-test-token"
BACKENDS = ["json", "sheets", "airtable"]
REMOTE = ["sheets", "airtable"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Emulator:
    name: str
    url: str
    proc: subprocess.Popen

    def control(self, method: str, path: str, body: Any = None) -> Any:
        r = httpx.request(method, f"{self.url}/_control/{path}", json=body, timeout=10)
        r.raise_for_status()
        return r.json()

    def fault(self, mode: str, times: int | None = None, **kw: Any) -> None:
        self.control("PUT", "faults", {"mode": mode, "times": times, **kw})

    def clear_fault(self) -> None:
        self.control("DELETE", "faults")

    def request_count(self) -> int:
        return self.control("GET", "requests")["count"]

    def log(self) -> list[dict[str, Any]]:
        return self.control("GET", "log")["log"]


def _start(module: str, token: str, tmp: Path) -> Emulator:
    port = free_port()
    err = open(tmp / f"{module.rsplit('.', 1)[-1]}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port), "--token", token],
        stdout=err,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/_control/faults", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{module} did not start; see {err.name}") from None
            time.sleep(0.05)
    return Emulator(module, url, proc)


def _stop(emu: Emulator) -> None:
    emu.proc.terminate()
    try:
        emu.proc.wait(10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        emu.proc.kill()


@pytest.fixture(scope="session")
def sheets_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emu = _start("aios.emulators.sheets", SHEETS_TOKEN, tmp_path_factory.mktemp("sheets-emu"))
    yield emu
    _stop(emu)


@pytest.fixture(scope="session")
def airtable_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emu = _start("aios.emulators.airtable", AIRTABLE_TOKEN, tmp_path_factory.mktemp("airtable-emu"))
    yield emu
    _stop(emu)


FAST_RETRY = dict(
    retry_attempts=3,
    retry_initial_delay=0.01,
    retry_max_delay=0.05,
    retry_max_total=5.0,
    retry_jitter=0.1,
    http_timeout=10.0,
    # the published limits, with every window 50x shorter: paced, but quick
    rate_window_scale=0.02,
)


@pytest.fixture(autouse=True)
def _no_state_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Settings come from the tests only, never from the developer's environment."""
    for name in list(os.environ):
        if name.startswith("AIOS_STATE_") or name == "AIRTABLE_API_KEY":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AIOS_HOME", str(tmp_path))
    clear_store_cache()
    yield
    clear_store_cache()


def new_sheet_book(emu: Emulator, sheets: dict[str, list[list[Any]]] | None = None) -> str:
    sid = "sheet" + uuid.uuid4().hex[:12]
    emu.control("PUT", f"spreadsheets/{sid}", {"title": f"Test {sid}", "sheets": sheets or {}})
    return sid


def new_airtable_base(emu: Emulator, tables: list[dict[str, Any]] | None = None) -> str:
    bid = "app" + uuid.uuid4().hex[:14]
    emu.control("PUT", f"bases/{bid}", {"tables": tables or []})
    return bid


@dataclass
class Backend:
    """Everything a test needs to open (more) stores on one backend."""

    name: str
    settings: StateSettings
    emulator: Emulator | None

    def open(self, **overrides: Any) -> Store:
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        return open_store(self.name, settings=settings)

    def settings_dict(self) -> dict[str, Any]:
        return self.settings.model_dump(mode="json", exclude={"sheets_token", "airtable_token"}) | {
            "sheets_token": SHEETS_TOKEN if self.name == "sheets" else None,
            "airtable_token": AIRTABLE_TOKEN if self.name == "airtable" else None,
        }


def make_backend(name: str, tmp_path: Path, request: pytest.FixtureRequest, **extra: Any) -> Backend:
    common = dict(
        path=tmp_path / "state" / "aios.json",
        journal_path=tmp_path / "state" / "journal.jsonl",
        probe_interval=60.0,
        **FAST_RETRY,
    )
    if name == "json":
        return Backend(name, StateSettings(backend="json", **(common | extra)), None)
    if name == "sheets":
        emu = request.getfixturevalue("sheets_emulator")
        settings = StateSettings(
            backend="sheets",
            sheets_spreadsheet=new_sheet_book(emu),
            sheets_token=SHEETS_TOKEN,
            sheets_api_url=emu.url,
            **(common | extra),
        )
        return Backend(name, settings, emu)
    emu = request.getfixturevalue("airtable_emulator")
    settings = StateSettings(
        backend="airtable",
        airtable_base_id=new_airtable_base(emu),
        airtable_token=AIRTABLE_TOKEN,
        airtable_api_url=emu.url,
        **(common | extra),
    )
    return Backend(name, settings, emu)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return make_backend(request.param, tmp_path, request)


@pytest.fixture(params=REMOTE)
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return make_backend(request.param, tmp_path, request)


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    s = backend.open()
    yield s
    s.close()
