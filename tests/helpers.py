"""Helpers shared by several test folders: one emulator process, a local POST receiver, waiting for a run."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aios.emulators.control import EmulatorControl
from aios.emulators.server import EmulatorHandle, running_emulator


# --- one emulator subprocess for a test folder (import both fixtures into its conftest.py) ---
@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorHandle]:
    with running_emulator() as handle:
        yield handle


@pytest.fixture(autouse=True)
def control(emulator: EmulatorHandle) -> Iterator[EmulatorControl]:
    emulator.control.reset()
    yield emulator.control
    emulator.control.reset()


@contextmanager
def receiving_posts(on_post: Callable[[str, Message, bytes], None], content_type: str | None = None) -> Iterator[str]:
    """A local HTTP server that hands every POST (path, headers, body) to `on_post` and answers 200; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            on_post(self.path, self.headers, self.rfile.read(int(self.headers.get("content-length", 0))))
            self.send_response(200)
            if content_type:
                self.send_header("content-type", content_type)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


async def wait_final(flow_run_id, timeout: float = 120):
    """The flow run once it is in a final state (AssertionError after `timeout` seconds)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fr = await client.read_flow_run(flow_run_id)
            if fr.state and fr.state.is_final():
                return fr
            await asyncio.sleep(0.5)
    raise AssertionError(f"run {flow_run_id} is still {fr.state_name} after {timeout} s")
