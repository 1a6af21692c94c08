"""The agent-CLI targets in outages: the drill's CLI scenarios against the real CLIs and the emulators,
and the status check's rule that a CLI target is asked a real question only when the user opts in."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aios.drill.runner import DRILL_ENV

ROOT = Path(__file__).resolve().parents[2]
CLI_SCENARIOS = ["claude-code-through-api-outage", "anthropic-all-down"]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def clis() -> None:
    subprocess.run([str(ROOT / "scripts" / "install-agent-clis")], check=True)


@pytest.fixture
def cli_homes(tmp_path, monkeypatch, stack):
    """Scratch homes for the CLIs, and Codex pointed at the emulated Responses API."""
    for name in ("HOME", "CODEX_HOME"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name))
    monkeypatch.setenv("AIOS_CODEX_BASE_URL", stack.env["OPENAI_BASE_URL"])


def _checks(report: dict) -> dict[tuple[str, str, str], dict]:
    return {(c["scenario"], c["subject"], c["expectation"]): c for s in report["scenarios"] for c in s["checks"]}


async def test_claude_code_answers_through_an_api_outage_and_codex_when_all_anthropic_is_down(
    clis, deployed, emulator, settings_env
):
    from flows.drill import fire_drill

    settings_env(**DRILL_ENV)
    report = await fire_drill(CLI_SCENARIOS, control_url=deployed.emulator_url)
    failed = [(k, c["detail"]) for k, c in _checks(report).items() if not c["passed"]]
    assert report["passed"], failed
    checks = _checks(report)
    through = checks[("claude-code-through-api-outage", "research-lead", "answered by claude-code")]
    assert through["detail"].startswith("completed via claude-code:sonnet")
    assert checks[("claude-code-through-api-outage", "health",
                   "claude-code:sonnet checked for readiness, asked no question")]["passed"]
    all_down = checks[("anthropic-all-down", "research-lead", "answered by codex after claude-code:sonnet failed")]
    assert all_down["detail"].startswith("completed via codex:gpt-5.5")
    assert "claude-code:sonnet overloaded" in all_down["detail"]
    assert [s["skipped"] for s in report["scenarios"] if s["name"] in CLI_SCENARIOS] == [None, None]


async def test_a_cli_scenario_is_skipped_with_its_reason_when_the_cli_is_missing(deployed, emulator, settings_env):
    from flows.drill import fire_drill

    settings_env(**DRILL_ENV, AIOS_CODEX_BIN="/nonexistent/codex")
    report = await fire_drill(["anthropic-all-down"], control_url=deployed.emulator_url)
    scenario = next(s for s in report["scenarios"] if s["name"] == "anthropic-all-down")
    assert scenario["skipped"] == "codex not installed (scripts/install-agent-clis)"
    assert scenario["checks"] == [] and emulator.requests() == []


async def test_status_check_asks_a_cli_target_no_question_by_default(clis, deployed, emulator, settings_env, cli_homes):
    from flows.status_check import status_check

    settings_env(AIOS_TARGETS="anthropic:claude-opus-5-5,codex:gpt-5.5", AIOS_PROBE_CLI_TARGETS="false")
    result = await status_check()
    assert [(r["provider"], r["model"]) for r in emulator.requests()] == [("anthropic", "claude-opus-5-5")]
    assert result["health"]["codex:gpt-5.5"] == "healthy"  # installed and its key is set: ready


async def test_status_check_asks_a_cli_target_a_real_question_when_opted_in(clis, deployed, emulator, settings_env, cli_homes):
    from flows.status_check import status_check

    settings_env(AIOS_TARGETS="anthropic:claude-opus-5-5,codex:gpt-5.5", AIOS_PROBE_CLI_TARGETS="true")
    emulator.set_fault("openai", "overloaded")
    result = await status_check()
    asked = [(r["provider"], r["model"], r["path"]) for r in emulator.requests()]
    assert ("openai", "gpt-5.5", "/openai/v1/responses") in asked
    assert result["health"]["codex:gpt-5.5"] == "down"  # the real answer failed; readiness alone said ready


async def test_status_check_marks_a_cli_target_without_login_down(clis, deployed, emulator, settings_env, cli_homes, monkeypatch):
    from flows.status_check import status_check

    monkeypatch.delenv("AIOS_CODEX_BASE_URL")  # Codex on its own login, and there is none in the scratch home
    settings_env(AIOS_TARGETS="anthropic:claude-opus-5-5,codex:gpt-5.5")
    result = await status_check()
    assert result["health"]["codex:gpt-5.5"] == "down"
    assert not [r for r in emulator.requests() if r["provider"] == "openai"]
