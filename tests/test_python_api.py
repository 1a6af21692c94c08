"""The Python API: `from aios import run_skill` / `arun_skill`, from any directory given AIOS_HOME,
and a skill run inside the user's own Prefect flow (examples/skill_in_my_flow.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from aios.errors import ConfigError
from aios.state import JsonStore
from tests.cli.conftest import project  # noqa: F401 - the throwaway project fixture

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


@pytest.fixture
def api_env(stack, emulator, project, tmp_path):  # noqa: F811
    """The session's emulators and Prefect server, this test's project, and nothing of this checkout."""
    env = {k: v for k, v in stack.env.items() if not k.startswith(("AIOS_STATE_", "AIOS_MEMORY_"))}
    return env | {"AIOS_HOME": str(project), "PREFECT_HOME": str(tmp_path / "prefect"), "AIOS_MEMORY_EXTRACTION": "false"}


def python(code_or_file: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *code_or_file], env=env, cwd=cwd, capture_output=True, text=True, timeout=240)


RUN = """
import json
from aios import run_skill
run = run_skill("research-lead", {"company": "Acme Freight"})
print(json.dumps({"run_id": run.run_id, "status": run.status.value, "provider": run.provider, "company": run.output["company"]}))
"""


def test_run_skill_from_another_directory_returns_the_run_record(api_env, project, elsewhere):  # noqa: F811
    proc = python(["-c", RUN], api_env, elsewhere)
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout.strip().splitlines()[-1])
    assert run["status"] == "completed" and run["provider"] == "anthropic"
    record = JsonStore(project / "state" / "aios.json").get("runs", run["run_id"])
    assert record.data["inputs"]["company"] == "Acme Freight", "recorded in AIOS_HOME's state, not the current directory's"
    assert not (elsewhere / "state").exists() and not (elsewhere / ".aios").exists()


async def test_arun_skill_answers_from_openai_when_anthropic_returns_529(stack, emulator):
    from aios import arun_skill

    emulator.set_fault("anthropic", "overloaded")
    run = await arun_skill("research-lead", {"company": "Acme"})
    assert run.ok and run.provider == "openai"
    assert [a.error_class.value for a in run.attempts if a.error_class] == ["overloaded", "overloaded"]


async def test_an_undeclared_input_raises_one_config_error_before_any_model_call(stack, emulator):
    from aios import arun_skill

    with pytest.raises(ConfigError, match="'bogus'"):
        await arun_skill("research-lead", {"bogus": 1})
    assert emulator.requests() == []


def test_the_skill_flows_stay_importable_for_prefect_users_from_any_directory(api_env, elsewhere):
    code = (
        "from prefect import Flow; from flows.skills import research_lead, weekly_report; "
        "print(research_lead.name, weekly_report.name, isinstance(research_lead, Flow))"
    )
    proc = python(["-c", code], api_env, elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["research-lead", "weekly-report", "True"]


def test_the_example_runs_a_skill_as_a_subflow_of_the_users_flow(api_env, elsewhere, stack):
    proc = python([str(ROOT / "examples" / "skill_in_my_flow.py"), "Acme Freight"], api_env, elsewhere)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "completed" and result["answered_by"] == "anthropic:claude-opus-5-5"
    assert result["routed_to"] in ("account-executive", "nurture-campaign", "no-follow-up")
    skill_run = httpx.get(f"{stack.api_url}/flow_runs/{result['skill_run_id']}", timeout=10).json()
    parent_task = httpx.get(f"{stack.api_url}/task_runs/{skill_run['parent_task_run_id']}", timeout=10).json()
    parent_flow = httpx.get(f"{stack.api_url}/flow_runs/{parent_task['flow_run_id']}", timeout=10).json()
    flow = httpx.get(f"{stack.api_url}/flows/{parent_flow['flow_id']}", timeout=10).json()
    assert flow["name"] == "lead-intake", "the skill ran inside the user's flow"
