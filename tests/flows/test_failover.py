"""Skills as Prefect flows failing over between real SDKs and the emulators (real Prefect server)."""

from __future__ import annotations

import asyncio
import json

import pytest

from aios.core.failures import ErrorClass
from aios.core.fallback import Outcome
from aios.runs.record import RunStatus, SkillRun
from aios.config.settings import get_settings
from aios.skills.loader import find_skill
from flows.skill_flow import build_skill_flow

pytestmark = pytest.mark.e2e

OPUS, SONNET = "claude-opus-5-5", "claude-sonnet-5-5"


async def run_flow(name: str, inputs: dict | None = None):
    state = await build_skill_flow(name)(inputs=inputs, return_state=True)
    return state, SkillRun.model_validate(await state.result(raise_on_failure=False))


def valid_for(skill_name: str, output: dict) -> bool:
    from jsonschema import Draft202012Validator

    schema = find_skill(get_settings().skills_dir, skill_name).output_schema
    return not list(Draft202012Validator(schema).iter_errors(output))


async def test_healthy_anthropic_answers(emulator):
    state, run = await run_flow("research-lead")
    assert state.is_completed() and run.status is RunStatus.completed
    assert (run.provider, run.model) == ("anthropic", OPUS)
    assert valid_for("research-lead", run.output)
    assert [r["provider"] for r in emulator.requests()] == ["anthropic"]


async def test_critical_skill_answers_from_openai_when_anthropic_returns_529(emulator):
    emulator.set_fault("anthropic", "overloaded")
    state, run = await run_flow("research-lead")
    assert state.is_completed()
    assert run.provider == "openai" and valid_for("research-lead", run.output)
    tried = [(a.provider, a.outcome, a.error_class) for a in run.attempts]
    assert tried[:2] == [("anthropic", Outcome.failed, ErrorClass.overloaded)] * 2, "both Claude models were tried"
    assert tried[-1] == ("openai", Outcome.ok, None)
    assert all(a.ms > 0 for a in run.attempts), "every attempt that made a call records its duration"


async def test_one_claude_model_down_falls_back_to_the_next_claude_model(emulator):
    emulator.set_fault("anthropic", "error_500", model=OPUS)
    _, run = await run_flow("research-lead")
    assert (run.provider, run.model) == ("anthropic", SONNET)
    assert not [r for r in emulator.requests() if r["provider"] == "openai"]


async def test_bad_request_fails_fast_without_calling_openai(emulator):
    emulator.set_fault("anthropic", "bad_request")
    state, run = await run_flow("research-lead")
    assert state.is_failed() and run.status is RunStatus.failed
    assert [a.error_class for a in run.attempts] == [ErrorClass.bad_request]
    assert [r["provider"] for r in emulator.requests()] == ["anthropic"]


async def test_black_holed_anthropic_times_out_on_both_models_then_openai_answers(emulator, settings_env, monkeypatch):
    from aios.emulators.blackhole import BlackHole

    settings_env(AIOS_CONNECT_TIMEOUT=0.5, AIOS_READ_TIMEOUT=30)
    with BlackHole() as hole:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", hole.url)
        _, run = await run_flow("research-lead")
    # Both Claude models time out on connect (no read wait), OpenAI answers; how long that takes is
    # bench/failover.py's figure (b), not an assertion here.
    tried = [(a.provider, a.outcome, a.error_class) for a in run.attempts]
    assert tried == [("anthropic", Outcome.failed, ErrorClass.timeout)] * 2 + [("openai", Outcome.ok, None)]
    assert run.provider == "openai" and valid_for("research-lead", run.output)


async def test_open_breaker_stops_calls_to_the_dead_target(emulator, settings_env):
    settings_env(AIOS_BREAKER_THRESHOLD=1, AIOS_BREAKER_COOLDOWN=300)
    emulator.set_fault("anthropic", "overloaded")
    await run_flow("research-lead")
    calls_after_first = len([r for r in emulator.requests() if r["provider"] == "anthropic"])
    _, second = await run_flow("research-lead")
    assert second.provider == "openai"
    assert len([r for r in emulator.requests() if r["provider"] == "anthropic"]) == calls_after_first
    assert [a.error_class for a in second.attempts[:2]] == [ErrorClass.circuit_open] * 2


async def test_a_stacks_open_circuits_stay_in_its_own_folder_not_the_projects(emulator, settings_env, stack):
    """A drill (or the test suite, or a soak) in a user's project must not leave that project's Claude circuit open."""
    project_file = stack.project / ".aios" / "breakers.json"
    before = project_file.read_bytes() if project_file.exists() else None
    settings_env(AIOS_BREAKER_THRESHOLD=1, AIOS_BREAKER_COOLDOWN=300)
    emulator.set_fault("anthropic", "overloaded")
    await run_flow("research-lead")
    assert "anthropic" in (stack.workdir / "breakers.json").read_text()
    assert (project_file.read_bytes() if project_file.exists() else None) == before


async def test_schema_invalid_answer_is_reasked_once_then_fails_over(emulator):
    emulator.set_fault("anthropic", "schema_invalid")
    _, run = await run_flow("research-lead")
    claude_calls = [r for r in emulator.requests() if r["provider"] == "anthropic" and r["model"] == OPUS]
    assert len(claude_calls) == 2, "one ask and one re-ask on the same target"
    assert run.attempts[0].error_class is ErrorClass.invalid_answer
    assert run.provider == "openai" and valid_for("research-lead", run.output)


async def test_twenty_concurrent_runs_complete_and_the_state_file_stays_intact(emulator, stack):
    from aios.state import open_store

    emulator.set_fault("anthropic", "overloaded", model=OPUS)
    results = await asyncio.gather(*(run_flow("research-lead", {"company": f"Co {i}"}) for i in range(20)))
    assert all(run.status is RunStatus.completed for _, run in results)
    data = json.loads(open(stack.env["AIOS_STATE_PATH"]).read())  # parses: the file is intact
    assert data
    store = open_store()
    for _, run in results:
        record = store.get("runs", run.run_id)
        assert record is not None and record.data["status"] == "completed"
        assert record.data["inputs"]["company"].startswith("Co ")


async def test_memory_extraction_adds_facts_with_their_source_run_through_the_fallback_chain(emulator, settings_env, stack):
    from aios.portability.memory import recent_facts

    settings_env(AIOS_MEMORY_EXTRACTION="true")
    emulator.set_fault("anthropic", "overloaded")  # extraction fails over like the skill itself
    _, run = await run_flow("research-lead")
    facts = recent_facts(get_settings().memory_path, limit=100)
    mine = [f for f in facts if f.source_run == run.run_id]
    assert mine and all(f.skill == "research-lead" for f in mine)
    assert {r["provider"] for r in emulator.requests()} == {"anthropic", "openai"}


async def test_critical_skill_answers_from_openai_when_anthropic_returns_200_with_truncated_json(emulator):
    emulator.set_fault("anthropic", "malformed_json")
    state, run = await run_flow("research-lead")
    assert state.is_completed() and run.status is RunStatus.completed
    assert run.provider == "openai" and valid_for("research-lead", run.output)
    tried = [(a.provider, a.outcome, a.error_class) for a in run.attempts]
    assert tried[:2] == [("anthropic", Outcome.failed, ErrorClass.malformed_response)] * 2
    assert tried[-1] == ("openai", Outcome.ok, None)


def test_aios_run_answers_from_openai_when_anthropic_returns_200_with_truncated_json(emulator, stack):
    """The command of the issue's report: it used to exit 2 with a TypeError and never ask OpenAI."""
    emulator.set_fault("anthropic", "malformed_json")
    result = stack.run("run", "research-lead", "--json", check=False, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    run = json.loads(result.stdout)
    assert run["status"] == "completed" and run["provider"] == "openai"
    assert run["attempts"][0]["error_class"] == "malformed_response"
    assert "Traceback" not in result.stderr
    assert {r["provider"] for r in emulator.requests()} == {"anthropic", "openai"}
