"""One emulator subprocess for the whole emulator test set; state is reset around every test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import httpx2
import openai
import pytest

from aios.emulators.server import EmulatorHandle
from tests.helpers import control, emulator  # noqa: F401 - the folder's emulator process, reset around every test

API_KEY = "test-key"
TIMEOUT = httpx2.Timeout(10.0, connect=2.0)


@pytest.fixture
async def claude(emulator: EmulatorHandle) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        api_key=API_KEY, base_url=emulator.anthropic_base_url, max_retries=0, timeout=TIMEOUT
    ) as client:
        yield client


@pytest.fixture
async def gpt(emulator: EmulatorHandle) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key=API_KEY, base_url=emulator.openai_base_url, max_retries=0, timeout=TIMEOUT
    ) as client:
        yield client
