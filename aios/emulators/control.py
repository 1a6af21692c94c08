"""The emulator's control API (/_control/...) and a small sync client for it.

Tests and operators switch faults and status pages at run time through this API
instead of restarting the emulator, and read the request log to assert which
provider was (or was not) called.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aios.emulators.faults import ANY_MODEL, EmulatorState, FaultError, FaultRule
from aios.emulators.statuspage import StatusError


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


def control_routes(state: EmulatorState) -> list[Route]:
    """Routes for the control API; mount under /_control."""

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def faults(request: Request) -> JSONResponse:
        if request.method == "GET":
            return JSONResponse({"rules": state.faults.rules()})
        if request.method == "DELETE":
            q = request.query_params
            state.faults.clear(q.get("provider"), q.get("model"))
            return JSONResponse({"rules": state.faults.rules()})
        try:
            body = await _json_body(request)
            rule = FaultRule(
                provider=str(body["provider"]),
                model=str(body.get("model") or ANY_MODEL),
                mode=str(body["mode"]),
                times=None if body.get("times") is None else int(body["times"]),
                delay=None if body.get("delay") is None else float(body["delay"]),
                retry_after=None if body.get("retry_after") is None else float(body["retry_after"]),
                retry_header=str(body.get("retry_header") or "both"),
            )
            state.faults.set(rule)
        except (ValueError, KeyError, TypeError, FaultError) as exc:
            return _bad(f"bad fault rule: {exc}")
        return JSONResponse({"rule": rule.to_json(), "rules": state.faults.rules()})

    async def requests(request: Request) -> JSONResponse:
        if request.method == "DELETE":
            state.requests.clear()
            return JSONResponse({"requests": []})
        q = request.query_params
        return JSONResponse({"requests": state.requests.entries(q.get("provider"), q.get("model"))})

    async def status(request: Request) -> JSONResponse:
        if request.method == "DELETE":
            state.status.clear()
        return JSONResponse({"pages": state.status.overrides()})

    async def status_page(request: Request) -> JSONResponse:
        page = request.path_params["page"]
        try:
            body = await _json_body(request)
            state.status.set(page, body.get("components"), body.get("incidents"))
        except (ValueError, AttributeError, StatusError) as exc:
            return _bad(f"bad status override: {exc}")
        return JSONResponse({"pages": state.status.overrides()})

    return [
        Route("/health", health, methods=["GET"]),
        Route("/faults", faults, methods=["GET", "PUT", "DELETE"]),
        Route("/requests", requests, methods=["GET", "DELETE"]),
        Route("/status", status, methods=["GET", "DELETE"]),
        Route("/status/{page}", status_page, methods=["PUT"]),
    ]


class EmulatorControl:
    """Sync client for the control API of an emulator at `base_url` (its root URL)."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=f"{self.base_url}/_control", timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ValueError(f"{method} /_control{path} -> {response.status_code}: {response.text}")
        return response.json()

    def health(self) -> bool:
        try:
            return bool(self._call("GET", "/health").get("ok"))
        except (httpx.HTTPError, ValueError):
            return False

    def set_fault(self, provider: str, mode: str, model: str = ANY_MODEL, times: int | None = None,
                  delay: float | None = None, retry_after: float | None = None,
                  retry_header: str = "both") -> dict[str, Any]:
        body = {"provider": provider, "model": model, "mode": mode, "times": times, "delay": delay,
                "retry_after": retry_after, "retry_header": retry_header}
        return self._call("PUT", "/faults", json=body)["rule"]

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/faults")["rules"]

    def clear_faults(self, provider: str | None = None, model: str | None = None) -> None:
        params = {k: v for k, v in (("provider", provider), ("model", model)) if v is not None}
        self._call("DELETE", "/faults", params=params)

    def requests(self, provider: str | None = None, model: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("provider", provider), ("model", model)) if v is not None}
        return self._call("GET", "/requests", params=params)["requests"]

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def set_status(self, page: str, components: dict[str, str] | None = None,
                   incidents: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        body = {"components": components or {}, "incidents": incidents or []}
        return self._call("PUT", f"/status/{page}", json=body)["pages"][page]

    def clear_status(self) -> None:
        self._call("DELETE", "/status")

    def reset(self) -> None:
        """Faults, request log and status pages all back to their defaults."""
        self.clear_faults()
        self.clear_requests()
        self.clear_status()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EmulatorControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
