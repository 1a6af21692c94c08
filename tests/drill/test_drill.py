"""Fire drills: the README's first command passes offline, and a broken policy fails with a clear verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aios.drill.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def test_aios_drill_passes_every_scenario_offline(tmp_path):
    """`aios drill` as users run it: its own stack (SQLite Prefect server, worker, emulators)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AIOS_HOME": str(ROOT), "PREFECT_HOME": str(tmp_path / "prefect")}
    proc = subprocess.run(
        [sys.executable, "-m", "aios.cli", "drill", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    report = json.loads(proc.stdout)
    failed = [(c["scenario"], c["subject"], c["expectation"], c["detail"]) for s in report["scenarios"] for c in s["checks"] if not c["passed"]]
    assert proc.returncode == 0 and report["passed"], failed
    assert [s["name"] for s in report["scenarios"]] == ["policy", *SCENARIOS]
    by_name = {s["name"]: s for s in report["scenarios"]}
    assert by_name["api-down"]["time_to_drain_ms"] is not None
    assert by_name["recovery"]["time_to_drain_ms"] is not None
    assert by_name["api-down"]["alerts"] == 2  # one for the outage, one for the recovery


async def test_drill_with_no_secondary_configured_fails_with_a_clear_verdict(deployed, emulator, settings_env):
    from aios.drill.runner import DRILL_ENV
    from flows.drill import fire_drill

    settings_env(**DRILL_ENV, AIOS_TARGETS="anthropic:claude-opus-5-5,anthropic:claude-sonnet-5-5")
    report = await fire_drill(["api-down"], control_url=deployed.emulator_url)
    assert report["passed"] is False
    checks = {(c["scenario"], c["subject"]): c for s in report["scenarios"] for c in s["checks"]}
    policy = checks[("policy", "research-lead")]
    assert not policy["passed"] and "no secondary configured" in policy["detail"]
    critical = checks[("api-down", "research-lead")]
    assert not critical["passed"] and critical["detail"].startswith("failed via nobody")
