"""`aios validate` against the emulators and the session's Prefect server, and what `doctor` makes of it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from aios.validation.doctor import Status, run_doctor
from aios.config.settings import get_settings
from aios.cli.app import app

pytestmark = pytest.mark.e2e

SKILL = "research-lead"
ANTHROPIC = ["anthropic:claude-opus-5-5", "anthropic:claude-sonnet-5-5"]
OPENAI = ["openai:gpt-5.5", "openai:gpt-5.4-mini"]


def validation_rows(skill: str) -> dict[str, Status]:
    report = run_doctor(get_settings())
    return {c.subject.removeprefix(f"{skill} on "): c.status for c in report.checks if c.check == "validation"}


def test_healthy_targets_all_pass_and_the_matrix_is_recorded(emulator, stack):
    result = CliRunner().invoke(app, ["validate", SKILL, "--runs", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert [c["target"] for c in data["cells"]] == ANTHROPIC + OPENAI
    for cell in data["cells"]:
        assert cell["skill"] == SKILL and cell["compare"] == "fit,priority"
        assert (cell["runs"], cell["passed"], cell["pass_rate"], cell["disagreements"]) == (1, 1, 1.0, 0)
        assert cell["reference"] == ANTHROPIC[0] and cell["mean_latency_ms"] > 0, "a real call took time"
        assert cell["tokens_in"] > 0 and cell["tokens_out"] > 0
    # Every target was really called, once each, through the model task.
    called = sorted(f"{r['provider']}:{r['model']}" for r in emulator.requests())
    assert called == sorted(ANTHROPIC + OPENAI)
    # doctor now knows research-lead was validated on every fallback target.
    assert validation_rows(SKILL) == {t: Status.ok for t in ANTHROPIC[1:] + OPENAI}
    # ...and the matrix is a Prefect table artifact.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["cross-model-validation"])))
    assert artifacts and artifacts[0].type == "table"


def test_a_target_answering_off_contract_fails_its_cell_and_the_exit_code(emulator, stack):
    emulator.set_fault("openai", "schema_invalid")
    targets = f"{ANTHROPIC[0]},{OPENAI[0]}"
    proc = subprocess.run(
        [sys.executable, "-m", "aios.cli", "validate", SKILL, "--targets", targets, "--runs", "1", "--json"],
        env=stack.env, cwd=stack.project, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] is False
    good, bad = data["cells"]
    assert (good["target"], good["ok"]) == (ANTHROPIC[0], True)
    assert (bad["target"], bad["ok"], bad["pass_rate"], bad["errors"]) == (OPENAI[0], False, 0.0, ["invalid_answer"])
    # One ask and one re-ask: the same task as a real run, contract check included.
    assert len(emulator.requests(provider="openai")) == 2
    assert f"{SKILL}@{OPENAI[0]}" in proc.stderr
    assert validation_rows(SKILL)[OPENAI[0]] is Status.fail


def test_an_unknown_skill_or_target_is_a_config_error_before_any_run():
    from aios.errors import ConfigError

    result = CliRunner().invoke(app, ["validate", "no-such-skill"])
    assert isinstance(result.exception, ConfigError)
    assert "no skill named 'no-such-skill'" in str(result.exception)
    result = CliRunner().invoke(app, ["validate", SKILL, "--targets", "openai"])
    assert isinstance(result.exception, ConfigError) and "provider:model" in str(result.exception)
    result = CliRunner().invoke(app, ["validate", SKILL, "--targets", "mystery:model-x"])
    assert isinstance(result.exception, ConfigError) and "unknown provider(s) mystery" in str(result.exception)
