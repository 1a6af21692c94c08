"""Atlassian Statuspage JSON API v2 emulator for status.claude.com and status.openai.com.

The runtime polls these pages to decide whether a provider is down before it even
tries a call; the emulator serves the same JSON shapes and lets tests flip component
statuses and open incidents at run time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

COMPONENT_STATUSES = ("operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance")
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved", "postmortem")
UNRESOLVED = ("investigating", "identified", "monitoring")
IMPACTS = ("none", "minor", "major", "critical")

# Worst-first ranking of the page indicator.
_INDICATOR_RANK = {"none": 0, "maintenance": 1, "minor": 2, "major": 3, "critical": 4}
_COMPONENT_INDICATOR = {
    "operational": "none",
    "under_maintenance": "maintenance",
    "degraded_performance": "minor",
    "partial_outage": "major",
    "major_outage": "critical",
}
_INDICATOR_TEXT = {
    "none": "All Systems Operational",
    "maintenance": "Service Under Maintenance",
    "minor": "Partially Degraded Service",
    "major": "Partial System Outage",
    "critical": "Major Service Outage",
}
_EPOCH = "2023-07-11T17:35:47.393Z"  # fixed created_at: stable ids and timestamps across restarts


@dataclass(frozen=True)
class PageSpec:
    id: str
    name: str
    url: str
    components: tuple[str, ...]


PAGES: dict[str, PageSpec] = {
    "claude": PageSpec(
        id="tymt9n04zgry",
        name="Claude",
        url="https://status.claude.com",
        components=(
            "claude.ai",
            "Claude Console (platform.claude.com)",
            "Claude API (api.anthropic.com)",
            "Claude Code",
        ),
    ),
    "openai": PageSpec(
        id="01jmyb4g5e4g3dhj2nhyp0f8zx",
        name="OpenAI",
        url="https://status.openai.com",
        components=("Chat Completions", "Responses", "Codex", "Embeddings"),
    ),
}


class StatusError(ValueError):
    """A control request naming an unknown page, component or status."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _short_id(*parts: str) -> str:
    return hashlib.sha1("\x00".join(parts).encode()).hexdigest()[:12]


@dataclass
class _PageState:
    components: dict[str, str] = field(default_factory=dict)  # name -> status override
    incidents: list[dict[str, Any]] = field(default_factory=list)  # as given, plus timestamps
    updated_at: str = _EPOCH


class StatusBoard:
    """Per-page overrides on top of an all-operational default."""

    def __init__(self) -> None:
        self._pages: dict[str, _PageState] = {name: _PageState() for name in PAGES}

    def _spec(self, page: str) -> PageSpec:
        if page not in PAGES:
            raise StatusError(f"unknown status page {page!r}; expected one of {list(PAGES)}")
        return PAGES[page]

    def set(self, page: str, components: dict[str, str] | None, incidents: list[dict[str, Any]] | None) -> None:
        """Replace the overrides of one page."""
        spec = self._spec(page)
        components = dict(components or {})
        for name, status in components.items():
            self._check_component(spec, name)
            if status not in COMPONENT_STATUSES:
                raise StatusError(f"bad status {status!r} for {name!r}; expected one of {list(COMPONENT_STATUSES)}")
        now = _now()
        stored: list[dict[str, Any]] = []
        for i, incident in enumerate(incidents or []):
            status = incident.get("status", "investigating")
            impact = incident.get("impact", "major")
            if status not in INCIDENT_STATUSES:
                raise StatusError(f"bad incident status {status!r}; expected one of {list(INCIDENT_STATUSES)}")
            if impact not in IMPACTS:
                raise StatusError(f"bad incident impact {impact!r}; expected one of {list(IMPACTS)}")
            for name in incident.get("components", []):
                self._check_component(spec, name)
            stored.append({
                "id": _short_id(page, str(i), incident.get("name", ""), now),
                "name": incident.get("name", "Elevated error rates"),
                "status": status,
                "impact": impact,
                "components": list(incident.get("components", [])),
                "body": incident.get("body", "We are currently investigating this issue."),
                "created_at": now,
            })
        self._pages[page] = _PageState(components, stored, now)

    @staticmethod
    def _check_component(spec: PageSpec, name: str) -> None:
        if name not in spec.components:
            raise StatusError(f"unknown component {name!r} on {spec.name}; expected one of {list(spec.components)}")

    def clear(self) -> None:
        self._pages = {name: _PageState() for name in PAGES}

    def overrides(self) -> dict[str, Any]:
        return {name: {"components": st.components, "incidents": st.incidents} for name, st in self._pages.items()}

    # -- the Statuspage v2 documents ---------------------------------------------
    def _page(self, page: str) -> dict[str, Any]:
        spec = self._spec(page)
        return {
            "id": spec.id,
            "name": spec.name,
            "url": spec.url,
            "time_zone": "Etc/UTC",
            "updated_at": self._pages[page].updated_at,
        }

    def _component(self, page: str, name: str) -> dict[str, Any]:
        spec, st = self._spec(page), self._pages[page]
        return {
            "id": _short_id(page, name),
            "name": name,
            "status": st.components.get(name, "operational"),
            "created_at": _EPOCH,
            "updated_at": st.updated_at if name in st.components else _EPOCH,
            "position": spec.components.index(name) + 1,
            "description": None,
            "showcase": True,
            "start_date": None,
            "group_id": None,
            "page_id": spec.id,
            "group": False,
            "only_show_if_degraded": False,
        }

    def _incident(self, page: str, inc: dict[str, Any]) -> dict[str, Any]:
        spec = self._spec(page)
        resolved = inc["status"] not in UNRESOLVED
        components = [self._component(page, name) for name in inc["components"]]
        update = {
            "id": _short_id(inc["id"], "update"),
            "status": inc["status"],
            "body": inc["body"],
            "incident_id": inc["id"],
            "created_at": inc["created_at"],
            "updated_at": inc["created_at"],
            "display_at": inc["created_at"],
            "affected_components": [
                {"code": c["id"], "name": c["name"], "old_status": "operational", "new_status": c["status"]}
                for c in components
            ],
            "deliver_notifications": True,
            "custom_tweet": None,
            "tweet_id": None,
        }
        return {
            "id": inc["id"],
            "name": inc["name"],
            "status": inc["status"],
            "created_at": inc["created_at"],
            "updated_at": inc["created_at"],
            "monitoring_at": inc["created_at"] if inc["status"] == "monitoring" else None,
            "resolved_at": inc["created_at"] if resolved else None,
            "impact": inc["impact"],
            "shortlink": f"https://stspg.io/{inc['id'][:7]}",
            "started_at": inc["created_at"],
            "page_id": spec.id,
            "incident_updates": [update],
            "components": components,
        }

    def components(self, page: str) -> list[dict[str, Any]]:
        return [self._component(page, name) for name in self._spec(page).components]

    def incidents(self, page: str, *, unresolved_only: bool = False) -> list[dict[str, Any]]:
        incidents = [self._incident(page, inc) for inc in self._pages[page].incidents]
        return [i for i in incidents if i["status"] in UNRESOLVED] if unresolved_only else incidents

    def status(self, page: str) -> dict[str, str]:
        """Worst of the component statuses and the unresolved incidents' impact."""
        levels = [_COMPONENT_INDICATOR[c["status"]] for c in self.components(page)]
        levels += [i["impact"] for i in self.incidents(page, unresolved_only=True)]
        indicator = max(levels, key=_INDICATOR_RANK.__getitem__, default="none")
        return {"indicator": indicator, "description": _INDICATOR_TEXT[indicator]}

    def document(self, page: str, name: str) -> dict[str, Any]:
        """One of the v2 JSON documents by file name (summary.json, status.json, ...)."""
        head = {"page": self._page(page)}
        if name == "summary.json":
            return {
                **head,
                "components": self.components(page),
                "incidents": self.incidents(page, unresolved_only=True),
                "scheduled_maintenances": [],
                "status": self.status(page),
            }
        if name == "status.json":
            return {**head, "status": self.status(page)}
        if name == "components.json":
            return {**head, "components": self.components(page)}
        if name == "incidents/unresolved.json":
            return {**head, "incidents": self.incidents(page, unresolved_only=True)}
        if name == "incidents.json":
            return {**head, "incidents": self.incidents(page)}
        if name in ("scheduled-maintenances.json", "scheduled-maintenances/upcoming.json",
                    "scheduled-maintenances/active.json"):
            return {**head, "scheduled_maintenances": []}
        raise KeyError(name)


def statuspage_routes(board: StatusBoard) -> list[Route]:
    """Routes for /{page}/api/v2/<document>; mount under /status."""

    async def document(request: Request) -> JSONResponse:
        page, name = request.path_params["page"], request.path_params["doc"]
        try:
            return JSONResponse(board.document(page, name))
        except (KeyError, StatusError):
            return JSONResponse({"error": "Not found"}, status_code=404)

    return [Route("/{page}/api/v2/{doc:path}", document, methods=["GET"])]
