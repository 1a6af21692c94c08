"""The Statuspage v2 emulator: real document shapes, switchable at run time."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from aios.emulators.control import EmulatorControl
from aios.emulators.server import EmulatorHandle

CLAUDE_COMPONENTS = ["claude.ai", "Claude Console (platform.claude.com)", "Claude API (api.anthropic.com)",
                     "Claude Code"]
OPENAI_COMPONENTS = ["Chat Completions", "Responses", "Codex", "Embeddings"]
PAGE_KEYS = {"id", "name", "url", "time_zone", "updated_at"}
COMPONENT_KEYS = {"id", "name", "status", "created_at", "updated_at", "position", "description", "showcase",
                  "start_date", "group_id", "page_id", "group", "only_show_if_degraded"}
INCIDENT_KEYS = {"id", "name", "status", "created_at", "updated_at", "monitoring_at", "resolved_at", "impact",
                 "shortlink", "started_at", "page_id", "incident_updates", "components"}
API = "Claude API (api.anthropic.com)"


def _get(emulator: EmulatorHandle, page: str, doc: str) -> dict[str, Any]:
    response = httpx.get(f"{emulator.status_url(page)}/api/v2/{doc}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    return response.json()


@pytest.mark.parametrize(("page", "names"), [("claude", CLAUDE_COMPONENTS), ("openai", OPENAI_COMPONENTS)])
def test_default_pages_are_all_operational(emulator: EmulatorHandle, page: str, names: list[str]) -> None:
    summary = _get(emulator, page, "summary.json")
    assert set(summary) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    assert set(summary["page"]) == PAGE_KEYS
    assert [c["name"] for c in summary["components"]] == names
    assert all(set(c) == COMPONENT_KEYS and c["status"] == "operational" for c in summary["components"])
    assert all(c["page_id"] == summary["page"]["id"] for c in summary["components"])
    assert summary["incidents"] == [] and summary["scheduled_maintenances"] == []
    assert summary["status"] == {"indicator": "none", "description": "All Systems Operational"}
    assert set(_get(emulator, page, "status.json")) == {"page", "status"}
    assert _get(emulator, page, "components.json")["components"] == summary["components"]
    assert _get(emulator, page, "incidents/unresolved.json")["incidents"] == []
    assert _get(emulator, page, "incidents.json")["incidents"] == []


@pytest.mark.parametrize(("status", "indicator"), [
    ("degraded_performance", "minor"),
    ("partial_outage", "major"),
    ("major_outage", "critical"),
    ("under_maintenance", "maintenance"),
    ("operational", "none"),
])
def test_indicator_follows_the_worst_component(emulator: EmulatorHandle, control: EmulatorControl,
                                               status: str, indicator: str) -> None:
    control.set_status("openai", components={"Responses": status})
    summary = _get(emulator, "openai", "summary.json")
    assert summary["status"]["indicator"] == indicator
    assert {c["name"]: c["status"] for c in summary["components"]}["Responses"] == status


def test_incident_and_outage_switch_at_run_time(emulator: EmulatorHandle, control: EmulatorControl) -> None:
    control.set_status("claude", components={API: "major_outage"}, incidents=[
        {"name": "Elevated errors on the API", "status": "investigating", "impact": "major", "components": [API]},
        {"name": "Yesterday's blip", "status": "resolved", "impact": "minor", "components": [API]},
    ])
    summary = _get(emulator, "claude", "summary.json")
    assert summary["status"] == {"indicator": "critical", "description": "Major Service Outage"}
    [incident] = summary["incidents"]
    assert set(incident) == INCIDENT_KEYS and incident["name"] == "Elevated errors on the API"
    assert incident["resolved_at"] is None and incident["impact"] == "major"
    assert [c["name"] for c in incident["components"]] == [API]
    assert incident["components"][0]["status"] == "major_outage"
    assert incident["incident_updates"][0]["status"] == "investigating"
    assert _get(emulator, "claude", "incidents/unresolved.json")["incidents"] == [incident]
    everything = _get(emulator, "claude", "incidents.json")["incidents"]
    assert [i["status"] for i in everything] == ["investigating", "resolved"] and everything[1]["resolved_at"]
    # The other page is untouched.
    assert _get(emulator, "openai", "status.json")["status"]["indicator"] == "none"

    control.clear_status()
    assert _get(emulator, "claude", "summary.json")["status"]["indicator"] == "none"
    assert _get(emulator, "claude", "incidents.json")["incidents"] == []


def test_incident_alone_raises_the_indicator(emulator: EmulatorHandle, control: EmulatorControl) -> None:
    control.set_status("claude", incidents=[{"name": "Slow responses", "impact": "minor"}])
    assert _get(emulator, "claude", "status.json")["status"]["indicator"] == "minor"


def test_bad_overrides_and_unknown_pages(emulator: EmulatorHandle, control: EmulatorControl) -> None:
    with pytest.raises(ValueError, match="unknown component"):
        control.set_status("claude", components={"Claude API": "major_outage"})
    with pytest.raises(ValueError, match="bad status"):
        control.set_status("claude", components={API: "on_fire"})
    with pytest.raises(ValueError, match="unknown status page"):
        control.set_status("gemini", components={})
    assert httpx.get(f"{emulator.status_url('gemini')}/api/v2/summary.json").status_code == 404
