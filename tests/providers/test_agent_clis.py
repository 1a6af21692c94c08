"""Claude Code and Codex as fallback targets: the real CLIs, driven through the real fallback loop,
against the emulators (which speak the streaming Messages and Responses APIs the CLIs use)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from aios.core.breaker import BreakerBoard
from aios.core.contract import contract_validator
from aios.core.failures import ErrorClass, FailureKind, ProviderFailure
from aios.core.fallback import DeadlinePassed, Outcome, run_chain
from aios.core.policy import Target, Timeouts, parse_deadline
from aios.emulators.control import EmulatorControl
from aios.emulators.server import EmulatorHandle, running_emulator
from aios.providers import ModelRequest, Providers
from aios.core.health import Health, probe_plan, readiness_signals
from aios.validation.doctor import Status, run_doctor
from aios.providers.agent_cli import (
    AgentCliSettings,
    CodexProvider,
    cli_health,
    cli_readiness,
    doctor_rows,
    failure_from_message,
    project_tools_bin,
)
from aios.config.settings import Settings
from aios.skills.loader import find_skill

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".aios" / "tools"
KEY = "test-key-agent-cli"


@pytest.fixture(scope="module")
def clis() -> None:
    """The pinned CLIs, installed into .aios/tools/ (a no-op when they already are)."""
    subprocess.run([str(ROOT / "scripts" / "install-agent-clis")], check=True)


@pytest.fixture(scope="module")
def emulator(clis) -> Iterator[EmulatorHandle]:
    with running_emulator() as handle:
        yield handle


@pytest.fixture(autouse=True)
def cli_env(emulator: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorControl]:
    """Both CLIs point at the emulator; their homes are scratch folders, never the user's."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex-home"))
    (tmp_path / "codex-home").mkdir()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emulator.anthropic_base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("AIOS_CODEX_BASE_URL", emulator.openai_base_url)
    monkeypatch.setenv("AIOS_HOME", str(ROOT))
    emulator.control.reset()
    yield emulator.control
    emulator.control.reset()


@pytest.fixture(scope="module")
def request_() -> ModelRequest:
    skill = find_skill(ROOT / "skills", "research-lead")
    return ModelRequest(system=skill.instructions, prompt="Research the lead: Acme Robotics, 40 staff, Berlin.",
                        schema_name="research_lead", output_schema=skill.output_schema)


async def chain(targets: str, request: ModelRequest, timeouts: Timeouts | None = None, deadline: str | None = None):
    """What flows/skill_flow.py does: the settings' policy, the shared adapters, run_chain, the contract check."""
    settings = Settings(targets=targets)
    policy = settings.policy().model_copy(update={"deadline": deadline})
    if timeouts:
        policy = policy.model_copy(update={"timeouts": timeouts})
    providers = Providers(settings)

    async def call(target, feedback):
        return await providers.complete(target, request, feedback, policy.timeouts)

    return await run_chain(policy, call, contract_validator(request.output_schema), BreakerBoard(policy.breaker))


def _outcomes(result) -> list[tuple[str, Outcome, ErrorClass | None]]:
    return [(f"{a.provider}:{a.model}", a.outcome, a.error_class) for a in result.attempts]


# ----------------------------------------------------------------- answers
async def test_claude_code_answers_a_skill_through_the_chain(request_, cli_env):
    result = await chain("claude-code:sonnet,codex:gpt-5.5", request_)
    assert result.answer.provider == "claude-code"
    assert set(result.answer.output) == set(request_.output_schema["required"])
    assert _outcomes(result) == [("claude-code:sonnet", Outcome.ok, None)]
    calls = cli_env.requests()
    assert [(c["provider"], c["stream"], c["status"]) for c in calls] == [("anthropic", True, 200)]


async def test_codex_answers_a_skill_through_the_chain(request_, cli_env):
    result = await chain("codex:gpt-5.5,claude-code:sonnet", request_)
    assert result.answer.provider == "codex"
    assert result.answer.output["fit"] in ("strong", "possible", "poor")
    assert result.answer.usage.input_tokens > 0
    calls = cli_env.requests()
    assert [(c["provider"], c["path"], c["stream"]) for c in calls] == [("openai", "/openai/v1/responses", True)]


# ---------------------------------------------------------------- failover
async def test_chain_answers_from_codex_when_anthropic_is_overloaded(request_, cli_env):
    cli_env.set_fault("anthropic", "overloaded")
    result = await chain("claude-code:sonnet,codex:gpt-5.5", request_)
    assert result.answer.provider == "codex"
    assert _outcomes(result) == [
        ("claude-code:sonnet", Outcome.failed, ErrorClass.overloaded),
        ("codex:gpt-5.5", Outcome.ok, None),
    ]
    assert result.attempts[0].status == 529


async def test_a_stream_cut_mid_way_is_a_failover(request_, cli_env):
    cli_env.set_fault("anthropic", "cut")
    result = await chain("claude-code:sonnet,codex:gpt-5.5", request_)
    assert result.answer.provider == "codex"
    assert _outcomes(result)[0] == ("claude-code:sonnet", Outcome.failed, ErrorClass.stream_cut)


async def test_codex_stream_cut_is_a_failover_back_to_claude_code(request_, cli_env):
    cli_env.set_fault("openai", "cut")
    result = await chain("codex:gpt-5.5,claude-code:sonnet", request_)
    assert _outcomes(result) == [
        ("codex:gpt-5.5", Outcome.failed, ErrorClass.stream_cut),
        ("claude-code:sonnet", Outcome.ok, None),
    ]


async def test_codex_answer_breaking_the_contract_is_reasked(request_, cli_env):
    cli_env.set_fault("openai", "schema_invalid", times=1)
    result = await chain("codex:gpt-5.5", request_)
    assert _outcomes(result) == [
        ("codex:gpt-5.5", Outcome.failed, ErrorClass.invalid_answer),
        ("codex:gpt-5.5", Outcome.ok, None),
    ]


async def test_missing_cli_is_misconfigured_and_skipped(request_, cli_env, monkeypatch):
    monkeypatch.setenv("AIOS_CODEX_BIN", "/nonexistent/codex")
    result = await chain("codex:gpt-5.5,claude-code:sonnet", request_)
    assert result.misconfigured == ["codex:gpt-5.5"]
    assert _outcomes(result)[0] == ("codex:gpt-5.5", Outcome.failed, ErrorClass.missing_key)
    assert result.answer.provider == "claude-code"


async def test_claude_code_without_login_is_misconfigured(request_, cli_env, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    result = await chain("claude-code:sonnet,codex:gpt-5.5", request_)
    assert result.misconfigured == ["claude-code:sonnet"]
    assert result.answer.provider == "codex"
    assert not [c for c in cli_env.requests() if c["provider"] == "anthropic"]


# --------------------------------------------------- timeouts leave nothing
def _processes_of(binary: Path) -> dict[int, int]:
    """pid -> process group of every running process whose executable is `binary`."""
    found = {}
    real = binary.resolve()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = Path(os.readlink(entry / "exe"))
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if exe == real:
            found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[2])
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def _group_of_running_cli(binary: Path, task: asyncio.Task) -> int:
    for _ in range(400):
        if found := _processes_of(binary):
            return next(iter(found.values()))
        assert not task.done(), task
        await asyncio.sleep(0.05)
    raise AssertionError("the CLI never started")


def _claude_binary() -> Path:
    return project_tools_bin("claude").resolve()


async def test_timeout_kills_the_cli_process_group(request_, cli_env):
    cli_env.set_fault("anthropic", "hang")
    providers = Providers(Settings())
    task = asyncio.create_task(providers.complete(Target(provider="claude-code", model="sonnet"), request_, None,
                                                  Timeouts(connect=3, read=4)))
    pgid = await _group_of_running_cli(_claude_binary(), task)
    with pytest.raises(ProviderFailure) as caught:
        await task
    assert caught.value.kind is FailureKind.read_timeout
    assert not _group_alive(pgid)
    assert _processes_of(_claude_binary()) == {}


def _environ(pid: int) -> dict[str, str]:
    raw = (Path("/proc") / str(pid) / "environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


async def test_the_skills_deadline_cuts_a_slow_claude_code_call_and_starts_no_further_target(request_, cli_env):
    cli_env.set_fault("anthropic", "slow", delay=60)
    task = asyncio.create_task(chain("claude-code:sonnet,codex:gpt-5.5", request_, deadline="8s"))
    pgid = await _group_of_running_cli(_claude_binary(), task)
    [pid] = [p for p, group in _processes_of(_claude_binary()).items() if group == pgid][:1]
    api_timeout_ms = int(_environ(pid)["API_TIMEOUT_MS"])
    with pytest.raises(DeadlinePassed) as caught:
        await task
    assert str(caught.value) == "deadline 8s passed" and caught.value.error_class is ErrorClass.timeout
    assert _outcomes(caught.value) == [("claude-code:sonnet", Outcome.failed, ErrorClass.timeout)]
    assert 0 < api_timeout_ms <= 8000  # the CLI's own read timeout is the time left, not AIOS_READ_TIMEOUT's 120 s
    assert not _group_alive(pgid)
    assert _processes_of(_claude_binary()) == {}
    assert cli_env.requests("openai") == []  # codex was never started


async def test_cancelling_a_run_kills_the_cli_process_group(request_, cli_env):
    cli_env.set_fault("anthropic", "hang")
    providers = Providers(Settings())
    task = asyncio.create_task(providers.complete(Target(provider="claude-code", model="sonnet"), request_, None,
                                                  Timeouts(connect=3, read=60)))
    pgid = await _group_of_running_cli(_claude_binary(), task)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _group_alive(pgid)


async def test_no_scratch_files_are_left_behind(request_, cli_env, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    await chain("codex:gpt-5.5,claude-code:sonnet", request_)
    assert list((tmp_path / "tmp").iterdir()) == []


# -------------------------------------------------------------- doctor hook
async def test_health_reports_binary_version_and_answer_without_the_key(cli_env):
    health = await cli_health("codex:gpt-5.5")
    assert health.can_answer and health.version == "codex-cli 0.169.0"
    assert health.binary == str(project_tools_bin("codex"))
    assert KEY not in health.model_dump_json()


async def test_health_of_a_missing_cli_says_so():
    health = await CodexProvider(AgentCliSettings(codex_bin="/nonexistent/codex")).health("gpt-5.5")
    assert not health.can_answer and health.binary is None and "not installed" in health.detail


# ------------------------------------------- readiness: the free check, no model call
async def test_readiness_names_claude_codes_key_source_and_asks_no_question(cli_env):
    ready = await cli_readiness("claude-code:sonnet")
    assert ready.ready and ready.version == "2.1.328 (Claude Code)"
    assert ready.credentials == "api_key (ANTHROPIC_API_KEY)"
    assert KEY not in ready.model_dump_json()
    assert cli_env.requests() == []


async def test_readiness_of_claude_code_without_login_says_how_to_log_in(cli_env, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    ready = await cli_readiness("claude-code:sonnet")
    assert not ready.ready and ready.problem.startswith("not logged in")


async def test_readiness_of_codex_on_an_endpoint_checks_its_key_variable(cli_env, monkeypatch):
    assert (await cli_readiness("codex:gpt-5.5")).credentials == "OPENAI_API_KEY is set"
    monkeypatch.delenv("OPENAI_API_KEY")
    assert (await cli_readiness("codex:gpt-5.5")).problem == "OPENAI_API_KEY is not set"


async def test_readiness_of_codex_on_its_own_login_asks_codex(cli_env, monkeypatch):
    monkeypatch.delenv("AIOS_CODEX_BASE_URL")
    ready = await cli_readiness("codex:gpt-5.5")
    assert ready.problem == "not logged in (run `codex login`)" and ready.version == "codex-cli 0.169.0"
    assert cli_env.requests() == []


def test_doctor_has_a_row_per_cli_target_and_no_api_key_row_for_them(cli_env, tmp_path, monkeypatch):
    from aios.state.json_store import JsonStore

    monkeypatch.setenv("AIOS_CODEX_BIN", "/nonexistent/codex")
    settings = Settings(targets="anthropic:claude-opus-5-5,claude-code:sonnet,codex:gpt-5.5")
    report = run_doctor(settings, open_store=lambda: JsonStore(tmp_path / "s.json"))
    rows = {(c.check, c.subject): (c.status, c.detail) for c in report.checks}
    status, detail = rows[("agent cli", "claude-code:sonnet")]
    assert status is Status.ok and detail.startswith("2.1.328 (Claude Code) at ")
    assert "api_key (ANTHROPIC_API_KEY); not asked a question" in detail
    assert rows[("agent cli", "codex:gpt-5.5")] == (Status.fail, "codex is not installed (scripts/install-agent-clis)")
    assert not [k for k in rows if k[0] == "api key" and k[1] in ("claude-code", "codex")]
    assert KEY not in report.model_dump_json()
    assert cli_env.requests() == []


def test_doctor_rows_ask_a_real_question_when_opted_in(cli_env):
    cli_env.set_fault("openai", "overloaded")
    [row] = doctor_rows(["codex:gpt-5.5"], answer=True)
    assert not row.ok and "no answer:" in row.detail
    assert [c["path"] for c in cli_env.requests()] == ["/openai/v1/responses"]
    cli_env.reset()
    [row] = doctor_rows(["codex:gpt-5.5"], answer=True)
    assert row.ok and row.detail.endswith("; answers") and KEY not in row.detail


# ------------------------------------------------------ pure helpers (no CLI)
def test_probe_plan_asks_cli_targets_only_when_the_user_opts_in():
    sdk, cc, cx = (Target(provider=p, model=m) for p, m in
                   (("anthropic", "claude-opus-5-5"), ("claude-code", "sonnet"), ("codex", "gpt-5.5")))
    clis = ("claude-code", "codex")
    assert probe_plan([sdk, cc, cx], clis, answer_cli=False) == ([sdk], [cc, cx])
    assert probe_plan([sdk, cc, cx], clis, answer_cli=True) == ([sdk, cc, cx], [cc, cx])


def test_readiness_down_when_a_cli_cannot_run_and_healthy_when_it_can():
    cc, cc2 = Target(provider="claude-code", model="sonnet"), Target(provider="claude-code", model="opus")
    signals = {(s.subject, s.health) for s in readiness_signals([(cc, "not logged in"), (cc2, "not logged in")])}
    assert signals == {("claude-code:sonnet", Health.down), ("claude-code:opus", Health.down), ("claude-code", Health.down)}
    signals = {(s.subject, s.health) for s in readiness_signals([(cc, None), (cc2, "not logged in")])}
    assert signals == {("claude-code:sonnet", Health.healthy), ("claude-code:opus", Health.down),
                       ("claude-code", Health.healthy)}



def test_deadline_parses_durations():
    assert [parse_deadline(t) for t in ("90", "90s", "10m", "1h30m")] == [90, 90, 600, 5400]
    with pytest.raises(ValueError, match="not a duration"):
        parse_deadline("ten minutes")


def test_cli_error_text_maps_to_the_failure_table():
    codex_429 = failure_from_message("Rate limit reached for gpt-5.5. Please try again in 1.5s. last status: 429")
    assert (codex_429.kind, codex_429.status, codex_429.retry_after) == (FailureKind.status, 429, 1.5)
    codex_503 = failure_from_message("unexpected status 503 Service Unavailable: overloaded")
    assert (codex_503.kind, codex_503.status) == (FailureKind.status, 503)
    assert failure_from_message("Not logged in · Please run /login").kind is FailureKind.missing_key
    assert failure_from_message("Missing environment variable: `OPENAI_API_KEY`.").kind is FailureKind.missing_key
    assert failure_from_message("stream disconnected before completion").kind is FailureKind.stream_cut
    assert failure_from_message("@@ garbage").kind is FailureKind.malformed_response


# ------------------------------------------------ the emulator's SSE, via the SDKs
async def test_anthropic_sdk_reads_the_emulated_message_stream(emulator):
    async with anthropic.AsyncAnthropic(api_key=KEY, base_url=emulator.anthropic_base_url, max_retries=0) as client:
        async with client.messages.stream(model="claude-sonnet-5-5", max_tokens=64,
                                          messages=[{"role": "user", "content": "hello there"}]) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
    assert text.startswith("Emulated answer") and final.content[0].text == text and final.stop_reason == "end_turn"


async def test_openai_sdk_reads_the_emulated_responses_stream(emulator):
    async with openai.AsyncOpenAI(api_key=KEY, base_url=emulator.openai_base_url, max_retries=0) as client:
        async with client.responses.stream(model="gpt-5", input="hello there") as stream:
            deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
            final = await stream.get_final_response()
    assert "".join(deltas) == final.output_text and final.status == "completed"


async def test_openai_sdk_sees_a_cut_responses_stream_as_an_error(emulator, cli_env):
    cli_env.set_fault("openai", "cut")
    async with openai.AsyncOpenAI(api_key=KEY, base_url=emulator.openai_base_url, max_retries=0) as client:
        with pytest.raises(openai.APIConnectionError):
            async with client.responses.stream(model="gpt-5", input="hello there") as stream:
                await stream.get_final_response()
