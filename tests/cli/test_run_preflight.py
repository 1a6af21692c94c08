"""`aios run` checks settings, skill, inputs, context budget and state store before the first model call.

Each case runs the real CLI against the session's emulators and Prefect server: a mistake costs no
model request, leaves memory/ as it was, and is one line naming the variable or file, exit 2.
"""

from __future__ import annotations

import json

import pytest

from aios.state import JsonStore
from tests.cli.conftest import aios, snapshot

BAD_SETTINGS = [
    ("AIOS_TARGETS", "garbage", "is not of the form provider:model"),
    ("AIOS_TARGETS", "anthropic:", "is not of the form provider:model"),
    ("AIOS_TARGETS", "anthropic:claude-opus-5-5@abc", "context window after '@' must be a positive whole number"),
    ("AIOS_CONNECT_TIMEOUT", "-1", "greater than 0"),
    ("AIOS_EXTRA_ENDPOINTS", "not json", "not valid JSON"),
    ("AIOS_STATE_BACKEND", "mongo", "'json', 'sheets' or 'airtable'"),
]


def assert_nothing_paid_for(emulator, project, before: dict[str, bytes]) -> None:
    assert emulator.requests() == [], "no model was called"
    assert snapshot(project / "memory") == before, "memory/ is unchanged"


@pytest.mark.parametrize(("variable", "value", "problem"), BAD_SETTINGS, ids=[f"{v}={x}" for v, x, _ in BAD_SETTINGS])
def test_a_bad_setting_stops_the_run_before_any_model_call(stack_env, emulator, project, variable, value, problem):
    memory = snapshot(project / "memory")
    result = aios("run", "research-lead", env=stack_env | {variable: value}, cwd=project)
    assert result.code == 2, result.err
    assert len(result.err_lines) == 1, result.err
    assert variable in result.err and problem in result.err
    assert_nothing_paid_for(emulator, project, memory)


def test_a_truncated_state_file_stops_the_run_before_any_model_call(stack_env, emulator, project):
    state = project / "state" / "aios.json"
    state.parent.mkdir()
    state.write_text('{"format": 1, "tables": {"runs": {')
    memory = snapshot(project / "memory")
    result = aios("run", "research-lead", env=stack_env, cwd=project)
    assert result.code == 2, result.err
    assert result.err_lines == [result.err.strip()] and "aios.json" in result.err
    assert state.read_text() == '{"format": 1, "tables": {"runs": {', "the user's file is left as it was"
    assert_nothing_paid_for(emulator, project, memory)


def test_a_skill_naming_an_unknown_provider_is_blamed_on_its_skill_file(stack_env, emulator, project):
    skill_file = project / "skills" / "research-lead" / "SKILL.md"
    skill_file.write_text(skill_file.read_text().replace("metadata:\n", 'metadata:\n  models: "nonsense:gpt-9"\n', 1))
    memory = snapshot(project / "memory")
    result = aios("run", "research-lead", env=stack_env, cwd=project)
    assert result.code == 2, result.err
    assert len(result.err_lines) == 1, result.err
    assert "research-lead/SKILL.md: metadata.models: unknown provider(s) nonsense" in result.err
    assert "AIOS_TARGETS" not in result.err
    assert_nothing_paid_for(emulator, project, memory)


def test_knowledge_over_the_context_budget_stops_the_run_before_any_model_call(stack_env, emulator, project):
    memory = snapshot(project / "memory")
    result = aios("run", "research-lead", env=stack_env | {"AIOS_CONTEXT_MAX_CHARS": "100"}, cwd=project)
    assert result.code == 2, result.err
    assert len(result.err_lines) == 1, result.err
    assert "knowledge" in result.err and "AIOS_CONTEXT_MAX_CHARS" in result.err
    assert_nothing_paid_for(emulator, project, memory)


def test_an_input_the_skill_does_not_declare_is_an_error_listing_the_ones_it_does(stack_env, emulator, project):
    memory = snapshot(project / "memory")
    result = aios("run", "research-lead", "--input", "bogusfield=1", env=stack_env, cwd=project)
    assert result.code == 2, result.err
    assert len(result.err_lines) == 1, result.err
    assert "'bogusfield'" in result.err and "it declares: company, contact, website" in result.err
    assert_nothing_paid_for(emulator, project, memory)


def test_a_declared_input_runs_with_the_samples_filling_the_rest(stack_env, emulator, project):
    env = stack_env | {"AIOS_MEMORY_EXTRACTION": "false"}
    result = aios("run", "research-lead", "--input", "company=Acme", "--json", env=env, cwd=project)
    assert result.code == 0, result.err
    run = json.loads(result.out)
    assert run["status"] == "completed" and run["not_recorded"] is None
    assert len(emulator.requests()) == 1
    record = JsonStore(project / "state" / "aios.json").get("runs", run["run_id"])
    samples = json.loads((project / "skills" / "research-lead" / "inputs.json").read_text())
    assert record.data["inputs"] == samples | {"company": "Acme"}, "the samples fill what --input did not give"


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [("AIOS_STATE_BACKEND", "mongo", "AIOS_STATE_BACKEND"), ("AIOS_CONTEXT_MAX_CHARS", "100", "AIOS_CONTEXT_MAX_CHARS")],
    ids=["state-backend", "context-budget"],
)
def test_validate_checks_the_store_and_context_before_any_model_call(stack_env, emulator, project, variable, value, problem):
    result = aios("validate", "research-lead", "--runs", "1", env=stack_env | {variable: value}, cwd=project)
    assert result.code == 2, result.err
    assert len(result.err_lines) == 1 and problem in result.err, result.err
    assert emulator.requests() == [], "no model was called"


def doctors_fleet_reason(env: dict[str, str], project) -> str:
    """The `fleet` row `aios doctor` prints for this environment (it must be a failure)."""
    doctor = aios("doctor", "--json", env=env, cwd=project)
    [row] = [c for c in json.loads(doctor.out)["checks"] if c["check"] == "fleet"]
    assert row["status"] == "fail", row
    return row["detail"]


RECORDS, BREAKERS = "AIOS_STATE_BACKEND=sheets or airtable", "AIOS_BREAKER_REDIS_URL"
LOCAL_ON_A_FLEET = [  # the extra settings, what the line names, the fixes it asks for
    ({}, ["AIOS_STATE_BACKEND=json", "breakers in the default local file"], {RECORDS, BREAKERS}),
    ({"AIOS_BREAKER_REDIS_URL": "redis://127.0.0.1:6379/0"}, ["AIOS_STATE_BACKEND=json"], {RECORDS}),
    ({"AIOS_STATE_BACKEND": "airtable"}, ["breakers in the default local file"], {BREAKERS}),
    ({"AIOS_BREAKER_STORE": "file", "AIOS_STATE_BACKEND": "sheets"}, ["AIOS_BREAKER_STORE=file"], {BREAKERS}),
]


@pytest.mark.parametrize(("extra", "named", "fixes"), LOCAL_ON_A_FLEET, ids=["records-and-breakers", "records", "breakers", "breakers-set"])
def test_a_fleet_keeping_state_in_a_local_file_stops_the_run_before_any_model_call_with_doctors_reason(
    stack_env, emulator, project, extra, named, fixes
):
    env = stack_env | {"AIOS_FLEET": "multi"} | extra
    memory = snapshot(project / "memory")
    result = aios("run", "research-lead", env=env, cwd=project)
    assert result.code == 2, result.err
    assert result.err_lines == [f"error: {doctors_fleet_reason(env, project)}"], "the same one line as the doctor's row"
    assert result.err.startswith(f"error: {' and '.join(named)} on a fleet (AIOS_FLEET=multi)"), result.err
    assert {fix for fix in (RECORDS, BREAKERS) if fix in result.err} == fixes, result.err
    assert not (project / "state").exists(), "no run record was written"
    assert_nothing_paid_for(emulator, project, memory)


@pytest.mark.parametrize(
    "command",
    [["status", "--check"], ["drain"], ["run", "research-lead", "--record", "any"], ["validate", "research-lead", "--runs", "1"]],
    ids=["status-check", "drain", "run-record", "validate"],
)
def test_every_command_that_calls_models_refuses_a_fleet_on_local_state_with_doctors_reason(stack_env, emulator, project, command):
    env = stack_env | {"AIOS_FLEET": "multi"}
    result = aios(*command, env=env, cwd=project)
    assert result.code == 2, result.err
    assert result.err_lines == [f"error: {doctors_fleet_reason(env, project)}"]
    assert emulator.requests() == [], "no model was called"
