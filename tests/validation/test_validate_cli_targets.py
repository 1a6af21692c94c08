"""`aios validate` on the agent-CLI targets: the real `codex exec` and `claude -p` answer a skill against
the emulators, through the same model task as a real run, and the cells are recorded for `aios doctor`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aios.cli.app import app
from aios.validation.doctor import Status, run_doctor
from aios.config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SKILL = "research-lead"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def clis() -> None:
    subprocess.run([str(ROOT / "scripts" / "install-agent-clis")], check=True)


@pytest.fixture
def cli_env(clis, stack, emulator, tmp_path, monkeypatch):
    """Scratch homes for the CLIs (never the user's), Codex on the emulated Responses API."""
    for name in ("HOME", "CODEX_HOME"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name))
    monkeypatch.setenv("AIOS_CODEX_BASE_URL", stack.env["OPENAI_BASE_URL"])
    monkeypatch.setenv("AIOS_READ_TIMEOUT", "120")
    return emulator


def test_validate_runs_a_skill_on_codex_through_the_real_cli(cli_env):
    result = CliRunner().invoke(app, ["validate", SKILL, "--targets", "codex:gpt-5.5", "--runs", "1", "--json"])
    assert result.exit_code == 0, result.output
    [cell] = json.loads(result.stdout)["cells"]
    assert (cell["skill"], cell["target"], cell["runs"], cell["passed"], cell["ok"]) == (SKILL, "codex:gpt-5.5", 1, 1, True)
    assert cell["tokens_in"] > 0
    # The answer came through `codex exec` (the Responses API), not the OpenAI SDK adapter (Chat Completions).
    assert [(r["provider"], r["model"], r["path"]) for r in cli_env.requests()] == [
        ("openai", "gpt-5.5", "/openai/v1/responses")
    ]


def test_validate_compares_claude_code_with_codex_and_doctor_reads_the_cells(cli_env, stack):
    targets = "claude-code:sonnet,codex:gpt-5.5"
    env = {**stack.env, **{k: os.environ[k] for k in ("HOME", "CODEX_HOME", "AIOS_CODEX_BASE_URL", "AIOS_READ_TIMEOUT")}}
    proc = subprocess.run(
        [sys.executable, "-m", "aios.cli", "validate", SKILL, "--targets", targets, "--runs", "1", "--json"],
        env=env, cwd=stack.project, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    cells = json.loads(proc.stdout)["cells"]
    assert [(c["target"], c["ok"], c["reference"]) for c in cells] == [
        ("claude-code:sonnet", True, "claude-code:sonnet"),
        ("codex:gpt-5.5", True, "claude-code:sonnet"),
    ]
    # With both CLIs as fallbacks in the chain, doctor sees them validated (and their readiness rows).
    report = run_doctor(Settings(targets=f"anthropic:claude-opus-5-5,{targets}"))
    rows = {(c.check, c.subject): c.status for c in report.checks}
    assert rows[("validation", f"{SKILL} on claude-code:sonnet")] is Status.ok
    assert rows[("validation", f"{SKILL} on codex:gpt-5.5")] is Status.ok
    assert rows[("agent cli", "claude-code:sonnet")] is Status.ok and rows[("agent cli", "codex:gpt-5.5")] is Status.ok
