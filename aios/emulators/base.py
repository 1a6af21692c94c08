"""What every emulator shares: the loopback-only control API, the bind check and uvicorn start, damaged
answers, and -- for the state-backend emulators (Sheets, Airtable) -- fault injection, rate limits, the
request and write logs, their control routes and their `python -m` entry point.

This module imports no emulator, so each emulator (and `server`, `app`) imports it at the top: no cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from aios.errors import AiosError
from aios.loopback import is_loopback

# ---------------------------------------------------------------------------------------
# Binding and serving
# ---------------------------------------------------------------------------------------


class LoopbackOnlyControl:
    """Refuse every `_control` route (ours and the mounted emulators') to a client that is not on this host.

    The control API injects faults and dumps every request, keys included: even with `--allow-remote`
    only the emulated APIs are reachable from elsewhere. A request without a client address is refused.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "_control" in scope["path"].split("/"):
            client = scope.get("client")
            if not is_loopback(client[0] if client else None):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                response = JSONResponse(
                    {"error": {"type": "forbidden", "message": "the control API answers loopback clients only"}},
                    status_code=403,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def check_bind(host: str, allow_remote: bool) -> str | None:
    """Loopback binds need nothing; any other needs `allow_remote` and gets a warning (returned, to print)."""
    if is_loopback(host):
        return None
    if not allow_remote:
        raise AiosError(
            f"--host {host}: not a loopback address; the emulators accept any key and log every request, "
            "so binding beyond this machine needs --allow-remote"
        )
    return (
        f"warning: the emulators listen on {host}: anyone who reaches this port can call the emulated APIs "
        "(the /_control routes still answer loopback clients only)"
    )


def add_bind_arguments(parser: argparse.ArgumentParser, default_port: int) -> None:
    """`--host`, `--allow-remote`, `--port`: the same three options on every emulator's command line."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    parser.add_argument("--port", type=int, default=default_port)


def exit_on_bad_bind(host: str, allow_remote: bool) -> None:
    """A refused host is one `error:` line and exit 2; an allowed remote one prints its warning."""
    try:
        warning = check_bind(host, allow_remote)
    except AiosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if warning:
        print(warning, file=sys.stderr)


class _DropCutNoise(logging.Filter):
    """The `cut` fault returns mid-body on purpose; uvicorn would log that as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing response."


def run(app: ASGIApp, host: str, port: int) -> None:
    """Serve `app` until interrupted (blocking)."""
    logging.getLogger("uvicorn.error").addFilter(_DropCutNoise())
    # A short graceful-shutdown timeout cancels requests parked in a `hang` or `slow` fault.
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=1)


# ---------------------------------------------------------------------------------------
# Damaged answers
# ---------------------------------------------------------------------------------------


class CutResponse(Response):
    """Full headers (real content-length), half the body, then the connection drops."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
        # Returning without the final body frame makes uvicorn close the transport mid-body.


class RefusedResponse(Response):
    """No answer at all: the connection closes before a byte of response, as a refused or reset one would.

    ASGI has no message for that, so it closes the server's transport of this request (uvicorn's
    `receive` is a method of the request cycle that holds it), then waits for the disconnect so uvicorn
    neither logs nor tries to send a 500.
    """

    def __init__(self) -> None:
        super().__init__(status_code=0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = getattr(getattr(receive, "__self__", None), "transport", None)
        if transport is None:
            raise RuntimeError("the `refused` fault needs uvicorn's request cycle to close the connection")
        transport.close()
        while (await receive())["type"] != "http.disconnect":
            pass


def broken_answer(mode: str, resp: Response) -> Response:
    """``cut`` / ``truncated``: the request was applied, the answer arrives damaged."""
    body = bytes(resp.body)
    if mode == "cut":
        return CutResponse(body, resp.status_code, media_type="application/json")
    # HTTP 200 whose JSON stops half-way (consistent content-length: only the JSON is bad)
    return Response(body[: max(1, len(body) // 2)], resp.status_code, media_type="application/json")


# ---------------------------------------------------------------------------------------
# State-backend emulators: fault injection, rate limits, request accounting
# ---------------------------------------------------------------------------------------

FAULT_MODES = ("none", "rate_limited", "error_500", "slow", "down", "lost", "cut", "truncated")


@dataclass
class RateLimiter:
    """Sliding-window request limits, off until enabled; ``scale`` shrinks every window."""

    enabled: bool = False
    scale: float = 1.0
    hits: dict[str, list[float]] = field(default_factory=dict)
    penalty_until: dict[str, float] = field(default_factory=dict)
    rejected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.enabled = bool(body.get("enabled", True))
            self.scale = float(body.get("scale", 1.0))
            if self.scale <= 0:
                raise ValueError("scale must be positive")
            self.hits.clear()
            self.penalty_until.clear()
            self.rejected = 0
        return self.describe()

    def describe(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "scale": self.scale, "rejected": self.rejected}

    def admit(self, buckets: list[tuple[str, tuple[int, float]]], penalty: float = 0.0) -> bool:
        """Count one request against every bucket; False (and nothing counted) if one is full."""
        if not self.enabled:
            return True
        now = time.monotonic()
        with self.lock:
            for name, _ in buckets:
                if self.penalty_until.get(name, 0.0) > now:
                    self.rejected += 1
                    return False
            for name, (limit, window) in buckets:
                hits = self.hits.setdefault(name, [])
                cutoff = now - window * self.scale
                while hits and hits[0] <= cutoff:
                    hits.pop(0)
                if len(hits) >= limit:
                    if penalty:
                        self.penalty_until[name] = now + penalty * self.scale
                    self.rejected += 1
                    return False
            for name, _ in buckets:
                self.hits[name].append(now)
        return True

    def control_routes(self, prefix: str = "/_control") -> list[Route]:
        async def limits(request: Request) -> Response:
            if request.method == "PUT":
                try:
                    raw = await request.body()
                    return JSONResponse(self.configure(json.loads(raw) if raw else {}))
                except (ValueError, TypeError) as exc:
                    return JSONResponse({"error": str(exc)}, 400)
            if request.method == "DELETE":
                return JSONResponse(self.configure({"enabled": False}))
            return JSONResponse(self.describe())

        return [Route(f"{prefix}/limits", limits, methods=["GET", "PUT", "DELETE"])]


@dataclass
class FaultInjector:
    mode: str = "none"
    times: int | None = None  # None = until cleared
    after: int = 0  # let this many requests through first
    delay: float = 1.0
    retry_after: float | None = 1.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, body: dict[str, Any]) -> dict[str, Any]:
        mode = body.get("mode", "none")
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; expected one of {FAULT_MODES}")
        times = body.get("times")
        with self.lock:
            self.mode = mode
            self.times = None if times is None else int(times)
            self.after = int(body.get("after") or 0)
            self.delay = float(body.get("delay", 1.0))
            ra = body.get("retry_after", 1.0)
            self.retry_after = None if ra is None else float(ra)
        return self.describe()

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "times": self.times,
            "after": self.after,
            "delay": self.delay,
            "retry_after": self.retry_after,
        }

    def take(self) -> str:
        """The fault to apply to the current request ("none" if none)."""
        with self.lock:
            if self.mode == "none":
                return "none"
            if self.after > 0:
                self.after -= 1
                return "none"
            if self.times is not None:
                if self.times <= 0:
                    self.mode = "none"
                    return "none"
                self.times -= 1
            return self.mode

    def record(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.requests.append({"method": method, "path": path, "status": status})

    async def fault_response(self, mode: str, error_body: Callable[[int, str], dict[str, Any]]) -> Response | None:
        """Apply ``mode``; return the response to send instead, or None to proceed."""
        if mode == "slow":
            await asyncio.sleep(self.delay)
            return None
        if mode == "rate_limited":
            headers = {} if self.retry_after is None else {"Retry-After": _fmt_secs(self.retry_after)}
            return JSONResponse(error_body(429, "rate limited (emulated)"), 429, headers=headers)
        if mode == "error_500":
            return JSONResponse(error_body(500, "internal error (emulated)"), 500)
        if mode == "down":
            return JSONResponse(error_body(503, "service unavailable (emulated)"), 503)
        return None

    def control_routes(self, prefix: str = "/_control") -> list[Route]:
        async def faults(request: Request) -> Response:
            if request.method == "PUT":
                try:
                    return JSONResponse(self.configure(await request.json()))
                except (ValueError, TypeError) as exc:
                    return JSONResponse({"error": str(exc)}, 400)
            if request.method == "DELETE":
                return JSONResponse(self.configure({"mode": "none"}))
            return JSONResponse(self.describe())

        async def reqs(request: Request) -> Response:
            with self.lock:
                if request.method == "DELETE":
                    self.requests.clear()
                return JSONResponse({"count": len(self.requests), "requests": list(self.requests)})

        return [
            Route(f"{prefix}/faults", faults, methods=["GET", "PUT", "DELETE"]),
            Route(f"{prefix}/requests", reqs, methods=["GET", "DELETE"]),
        ]


def _fmt_secs(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def route_path(scope: dict[str, Any]) -> str:
    """The undecoded request path relative to any mount point."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope["path"]
    path = path.split("?", 1)[0]
    root = scope.get("root_path", "") or ""
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


def default_tokens(env: str, fallback: str) -> set[str]:
    raw = os.environ.get(env, "")
    toks = {t.strip() for t in raw.split(",") if t.strip()}
    return toks or {fallback}


class BackendEmulator:
    """One state-backend emulator: bearer tokens, fault injection, rate limits, the write log and the
    control routes. A subclass speaks its API (`_api`), names its rate-limit buckets (`over_limit`), its
    error shape (`error_body`) and forgets its data on reset (`forget`)."""

    tokens_env: ClassVar[str]  # comma-separated accepted tokens when none are given
    api_root: ClassVar[str]  # the API's path prefix, e.g. "/v4"

    def __init__(self, tokens: Iterable[str] | None = None, auto_create: bool = False) -> None:
        self.auto_create = auto_create
        self.tokens: set[str] = set(tokens) if tokens else default_tokens(self.tokens_env, "emulator-token")
        self.faults = FaultInjector()
        self.limits = RateLimiter()
        self.log: list[dict[str, Any]] = []
        self.lock = threading.RLock()

    # -- what a subclass provides -------------------------------------------------------
    @staticmethod
    def error_body(status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def over_limit(self, request: Request, path: str) -> Response | None:
        """Count the request against the published limits; the 429 to answer if one is exceeded."""
        raise NotImplementedError

    async def _api(self, request: Request, path: str) -> Response:
        raise NotImplementedError

    def forget(self) -> None:
        """Drop all data (called under `self.lock` on reset)."""
        raise NotImplementedError

    # -- HTTP ---------------------------------------------------------------------------
    async def api(self, request: Request) -> Response:
        """Rate limits, then the injected fault, then the API; every answer is counted."""
        path = route_path(request.scope)
        resp = self.over_limit(request, path)
        if resp is None:
            mode = self.faults.take()
            resp = await self.faults.fault_response(mode, self.error_body)
            if resp is None:
                resp = await self._api(request, path)
                if mode == "lost":  # done, but the client never hears about it
                    resp = JSONResponse(self.error_body(503, "service unavailable (emulated, request was applied)"), 503)
                elif mode in ("cut", "truncated"):
                    resp = broken_answer(mode, resp)
        self.faults.record(request.method, unquote(path), resp.status_code)
        return resp

    # -- control ------------------------------------------------------------------------
    async def control_log(self, request: Request) -> Response:
        with self.lock:
            if request.method == "DELETE":
                self.log.clear()
            return JSONResponse({"count": len(self.log), "log": list(self.log)})

    async def control_reset(self, request: Request) -> Response:
        with self.lock:
            self.forget()
            self.log.clear()
        self.faults.configure({"mode": "none"})
        self.limits.configure({"enabled": False})
        with self.faults.lock:
            self.faults.requests.clear()
        return JSONResponse({"reset": True})

    def app(self, routes: Iterable[BaseRoute]) -> Starlette:
        """The Starlette app: the shared control routes, the subclass's own `routes`, then the API."""
        app = Starlette(
            routes=[
                *self.faults.control_routes(),
                *self.limits.control_routes(),
                Route("/_control/log", self.control_log, methods=["GET", "DELETE"]),
                Route("/_control/reset", self.control_reset, methods=["DELETE", "POST"]),
                *routes,
                Route(f"{self.api_root}/{{rest:path}}", self.api, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            ]
        )
        app.state.emulator = self
        return app


def serve_backend(
    build: Callable[..., ASGIApp], description: str, default_port: int, argv: list[str] | None = None
) -> None:
    """`python -m aios.emulators.sheets|airtable`: one state-backend emulator on its own port.

    `build(tokens, auto_create=...)` makes the app; its control routes answer loopback clients only."""
    p = argparse.ArgumentParser(description=description)
    add_bind_arguments(p, default_port)
    p.add_argument("--token", action="append", help="accepted bearer token (repeatable)")
    p.add_argument("--auto-create", action="store_true", help="unknown ids exist (empty) on first use")
    a = p.parse_args(argv)
    exit_on_bad_bind(a.host, a.allow_remote)
    run(LoopbackOnlyControl(build(a.token, auto_create=a.auto_create)), a.host, a.port)
