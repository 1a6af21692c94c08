"""One emulator subprocess for the provider tests (no Prefect server: the adapters do not need one)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aios.emulators.control import EmulatorControl
from aios.emulators.server import EmulatorHandle, running_emulator


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorHandle]:
    with running_emulator() as handle:
        yield handle


@pytest.fixture(autouse=True)
def control(emulator: EmulatorHandle) -> Iterator[EmulatorControl]:
    emulator.control.reset()
    yield emulator.control
    emulator.control.reset()
