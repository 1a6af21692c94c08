"""Headless Chromium driven over the DevTools protocol (a websocket), just enough to read a rendered page."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import websockets

from aios.drill.stack import free_port

SNAPSHOT_JS = """JSON.stringify({
  text: document.body ? document.body.innerText : "",
  cells: Array.from(document.querySelectorAll("td, th")).map(c => c.innerText.trim()),
  links: Array.from(document.querySelectorAll("a[href]")).map(a => a.href),
})"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Snapshot:
    text: str
    cells: list[str]
    links: list[str]


class DevTools:
    """One page's DevTools connection: calls by id, events to a callback."""

    def __init__(self, ws: Any, on_event) -> None:
        self.ws = ws
        self.on_event = on_event
        self._next = 0
        self._pending: dict[int, asyncio.Future] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if "id" in message:
                future = self._pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            else:
                await self.on_event(self, message)

    async def call(self, method: str, **params: Any) -> dict:
        self._next += 1
        future = asyncio.get_running_loop().create_future()
        self._pending[self._next] = future
        await self.ws.send(json.dumps({"id": self._next, "method": method, "params": params}))
        message = await asyncio.wait_for(future, 15)
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return message.get("result", {})

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


async def render(
    chromium: str,
    url: str,
    *,
    api_url: str,
    profile: Path,
    until: list[str],
    timeout: float = 40,
    in_text: bool = False,
    screenshot: Path | None = None,
) -> Snapshot:
    """Open `url` in headless Chromium and return the page once every string in `until` is in a table cell
    (anywhere in the page's text with `in_text`), or whatever was rendered when `timeout` ran out;
    `screenshot` is where to save a PNG of it.

    The UI learns where the API is from `/ui-settings`; that answer is replaced with `api_url`, since a
    server started with `--port` still advertises its default port there.
    """
    port = free_port()
    log = profile / "chromium.log"
    profile.mkdir(parents=True, exist_ok=True)
    args = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-proxy-server",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1440,1100",
        f"--user-data-dir={profile / 'profile'}",
        f"--remote-debugging-port={port}",
        "about:blank",
    ]
    with log.open("wb") as handle:
        proc = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        page = await _page_target(port, proc, log)
        settings = httpx.get(f"{url.split('/', 3)[0]}//{url.split('/', 3)[2]}/ui-settings", trust_env=False).json()
        settings["api_url"] = api_url
        body = base64.b64encode(json.dumps(settings).encode()).decode()

        async def on_event(devtools: DevTools, message: dict) -> None:
            if message.get("method") == "Fetch.requestPaused":
                asyncio.create_task(
                    devtools.call(
                        "Fetch.fulfillRequest",
                        requestId=message["params"]["requestId"],
                        responseCode=200,
                        responseHeaders=[{"name": "content-type", "value": "application/json"}],
                        body=body,
                    )
                )

        async with websockets.connect(page, max_size=None, proxy=None) as ws:
            devtools = DevTools(ws, on_event)
            try:
                await devtools.call("Fetch.enable", patterns=[{"urlPattern": "*/ui-settings*", "requestStage": "Request"}])
                await devtools.call("Page.navigate", url=url)
                snapshot = Snapshot("", [], [])
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    result = await devtools.call("Runtime.evaluate", expression=SNAPSHOT_JS, returnByValue=True)
                    value = result.get("result", {}).get("value")
                    if value:
                        snapshot = Snapshot(**json.loads(value))
                        places = [snapshot.text] if in_text else snapshot.cells
                        if all(any(s in place for place in places) for s in until):
                            break
                    await asyncio.sleep(0.25)
                if screenshot is not None:
                    shot = await devtools.call("Page.captureScreenshot", format="png")
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    screenshot.write_bytes(base64.b64decode(shot["data"]))
                return snapshot
            finally:
                await devtools.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def _page_target(port: int, proc: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + 20
    async with httpx.AsyncClient(trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
                pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            await asyncio.sleep(0.1)
    raise TimeoutError(f"chromium's DevTools did not answer on port {port}:\n{log.read_text(errors='replace')[-2000:]}")
