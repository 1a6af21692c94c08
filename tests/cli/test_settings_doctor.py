"""`aios doctor` with each bad setting prints its table and exits 1; `.env` is read from the project root."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import aios

BAD = {
    "AIOS_TARGETS=garbage": ({"AIOS_TARGETS": "garbage"}, ("settings", "AIOS_TARGETS"), "not of the form provider:model"),
    "AIOS_TARGETS=anthropic:": ({"AIOS_TARGETS": "anthropic:"}, ("settings", "AIOS_TARGETS"), "not of the form provider:model"),
    "AIOS_TARGETS=...@abc": (
        {"AIOS_TARGETS": "anthropic:claude-opus-5-5@abc"}, ("settings", "AIOS_TARGETS"), "positive whole number of tokens",
    ),
    "AIOS_CONNECT_TIMEOUT=-1": ({"AIOS_CONNECT_TIMEOUT": "-1"}, ("settings", "AIOS_CONNECT_TIMEOUT"), "greater than 0"),
    "AIOS_EXTRA_ENDPOINTS=not json": ({"AIOS_EXTRA_ENDPOINTS": "not json"}, ("settings", "AIOS_EXTRA_ENDPOINTS"), "not valid JSON"),
    "AIOS_STATE_BACKEND=mongo": ({"AIOS_STATE_BACKEND": "mongo"}, ("state store", "runs table"), "AIOS_STATE_BACKEND"),
    "knowledge over budget": ({"AIOS_CONTEXT_MAX_CHARS": "100"}, ("context", "knowledge/"), "AIOS_CONTEXT_MAX_CHARS"),
}


def rows(stdout: str) -> dict[tuple[str, str], dict]:
    data = json.loads(stdout)
    return {(c["check"], c["subject"]): c for c in data["checks"]}


@pytest.mark.parametrize("case", list(BAD))
def test_doctor_shows_a_bad_setting_as_a_failed_row_and_exits_1(home_env, project, case):
    env, row, problem = BAD[case]
    result = aios("doctor", "--json", env=home_env | env, cwd=project, timeout=120)
    assert result.code == 1, result.err
    found = rows(result.out)
    assert found[row]["status"] == "fail" and problem in found[row]["detail"], found[row]
    assert found[("skill", "research-lead")]["status"] == "ok", "the other checks still ran"

    table = aios("doctor", env=home_env | env, cwd=project, timeout=120)
    assert table.code == 1, table.err
    assert "aios doctor" in table.out and row[1] in table.out and "1 fail" in table.out


def test_doctor_blames_a_skills_unknown_provider_on_its_skill_file(home_env, project):
    skill_file = project / "skills" / "research-lead" / "SKILL.md"
    skill_file.write_text(skill_file.read_text().replace("metadata:\n", 'metadata:\n  models: "nonsense:gpt-9"\n', 1))
    result = aios("doctor", "--json", env=home_env, cwd=project, timeout=120)
    assert result.code == 1, result.err
    row = rows(result.out)[("policy", "research-lead")]
    assert row["status"] == "fail"
    assert "SKILL.md: metadata.models: unknown provider(s) nonsense" in row["detail"] and "AIOS_TARGETS" not in row["detail"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [("deployments: [\n  - name: x\n", "not valid YAML at line 2"), ('"just a string"\n', "expected a mapping")],
    ids=["invalid-yaml", "bare-string"],
)
def test_a_broken_prefect_yaml_is_a_doctor_row_and_one_line_from_deploy(home_env, project, text, problem):
    (project / "prefect.yaml").write_text(text)
    result = aios("doctor", "--json", env=home_env, cwd=project, timeout=120)
    assert result.code == 1, result.err
    row = rows(result.out)[("deployments", "prefect.yaml")]
    assert row["status"] == "fail" and problem in row["detail"]

    deploy = aios("deploy", "--check", env=home_env, cwd=project, timeout=120)
    assert deploy.code == 2, deploy.err
    assert len(deploy.err_lines) == 1 and "prefect.yaml" in deploy.err and problem in deploy.err
    assert (project / "prefect.yaml").read_text() == text, "the user's file is left as it was"


def test_dotenv_is_read_from_the_project_root_not_the_current_directory(home_env, project, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".env").write_text("AIOS_CONNECT_TIMEOUT=-1\n")  # not the project's: never read
    (project / ".env").write_text("AIOS_TARGETS=garbage\nAIOS_STATE_BACKEND=mongo\n")
    result = aios("doctor", "--json", env=home_env, cwd=elsewhere, timeout=120)
    assert result.code == 1, result.err
    found = rows(result.out)
    assert found[("settings", "AIOS_TARGETS")]["status"] == "fail"
    assert "AIOS_STATE_BACKEND" in found[("state store", "runs table")]["detail"], "AIOS_STATE_* come from .env too"
    assert ("settings", "AIOS_CONNECT_TIMEOUT") not in found

    run = aios("run", "research-lead", env=home_env, cwd=elsewhere)
    assert run.code == 2 and len(run.err_lines) == 1 and "AIOS_TARGETS" in run.err, run.err


def test_the_environment_wins_over_dotenv(home_env, project):
    (project / ".env").write_text("AIOS_TARGETS=garbage\n")
    result = aios("doctor", "--json", env=home_env | {"AIOS_TARGETS": "openai:gpt-5.5"}, cwd=project, timeout=120)
    found = rows(result.out)
    assert found[("settings", "AIOS_*")]["status"] == "ok", found
    assert found[("policy", "default")]["detail"] == "openai:gpt-5.5"
