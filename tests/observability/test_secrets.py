"""Canary keys in the environment never reach a log line, span, metric, artifact, Prefect record or state record."""

from __future__ import annotations

import logging
from pathlib import Path
from uuid import UUID

import pytest

from aios.observability.redaction import REDACTED
from aios.runs.record import RunStatus, SkillRun
from flows.skill_flow import build_skill_flow

from .conftest import CANARIES, CANARY_ANTHROPIC, CANARY_OPENAI

pytestmark = pytest.mark.e2e


@pytest.fixture
def canary_keys(emulator, monkeypatch):
    """Both providers called with canary keys (the emulators accept any non-empty key)."""
    from aios.observability import redaction
    from aios.config.runtime import get_runtime, reset_runtime

    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY_ANTHROPIC)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_OPENAI)
    reset_runtime()
    providers = get_runtime().providers
    assert providers.adapter("anthropic").endpoint.api_key() == CANARY_ANTHROPIC
    assert providers.adapter("openai").endpoint.api_key() == CANARY_OPENAI
    yield
    monkeypatch.undo()
    reset_runtime()
    redaction.refresh_secrets()


async def everything_recorded(flow_run_id: UUID, otel, all_logs, capfd, stack, artifact: bool = True) -> dict[str, str]:
    """Every place a run writes to, as text: logs (ours, Prefect's, stderr), spans, metrics, Prefect's API, state."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogHandler

    await APILogHandler.aflush()
    async with get_client() as client:
        flow_run = await client.read_flow_run(flow_run_id)
        task_runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        api_logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    assert api_logs and (artifacts or not artifact), "the run left logs (and an artifact) on the server"
    std = capfd.readouterr()
    spans = otel.spans()
    assert spans
    state_files = [Path(stack.env["AIOS_STATE_PATH"]), Path(stack.env["AIOS_STATE_JOURNAL_PATH"])]
    return {
        "log records": all_logs.output(),
        "stdout/stderr": std.out + std.err,
        "spans": repr(
            [(s.name, dict(s.attributes), [(e.name, dict(e.attributes)) for e in s.events], s.status.description) for s in spans]
        ),
        "metrics": repr(otel.reader.get_metrics_data()),
        "artifacts": "\n".join(f"{a.description}\n{a.data}" for a in artifacts),
        "prefect logs": "\n".join(log.message for log in api_logs),
        "prefect runs": flow_run.model_dump_json() + "".join(t.model_dump_json() for t in task_runs),
        "state": "".join(p.read_text() for p in state_files if p.exists()),
    }


def assert_no_canary(recorded: dict[str, str]) -> None:
    leaks = [(where, canary) for where, text in recorded.items() for canary in CANARIES if canary in text]
    assert not leaks, f"canary keys leaked into: {leaks}"


async def run_flow(name: str):
    state = await build_skill_flow(name)(return_state=True)
    return state, SkillRun.model_validate(await state.result(raise_on_failure=False))


async def test_a_failover_run_records_no_key_anywhere(canary_keys, emulator, otel, all_logs, capfd, stack):
    emulator.set_fault("anthropic", "overloaded")
    state, run = await run_flow("research-lead")
    assert run.status is RunStatus.completed and run.provider == "openai"
    recorded = await everything_recorded(state.state_details.flow_run_id, otel, all_logs, capfd, stack)
    assert "anthropic:claude-opus-5-5" in recorded["artifacts"] and run.run_id in recorded["state"]
    assert "httpcore" in recorded["log records"], "DEBUG logs of the HTTP stack were captured too"
    assert_no_canary(recorded)


async def test_keys_an_upstream_echoes_back_are_redacted_everywhere(canary_keys, emulator, otel, all_logs, capfd, stack):
    """The worst case, on the wire: Claude's API answers an error whose message repeats the key, and a
    response header carrying it reaches the SDK's debug log. The real adapter turns it into the attempt's
    message, which then goes into the run record, the span, the artifact and the logs."""
    emulator.set_fault("anthropic", "echo_key")
    state, run = await run_flow("research-lead")
    assert run.provider == "openai"
    assert run.attempts[0].message == f"upstream rejected the request made with key {REDACTED}"
    recorded = await everything_recorded(state.state_details.flow_run_id, otel, all_logs, capfd, stack)
    assert_no_canary(recorded)
    for where in ("log records", "spans", "artifacts", "state"):
        assert REDACTED in recorded[where], f"the echoed key reached {where}, redacted"


async def test_a_failure_carrying_a_key_is_redacted_in_its_exception_text(canary_keys, emulator):
    """What the adapter raises is safe to print or log: the key is already out of its text."""
    from aios.core.failures import ProviderFailure
    from aios.core.policy import Target, Timeouts
    from aios.providers import ModelRequest
    from aios.config.runtime import get_runtime

    emulator.set_fault("anthropic", "echo_key")
    request = ModelRequest(system="s", prompt="p", schema_name="x", output_schema={"type": "object"})
    with pytest.raises(ProviderFailure) as info:
        await get_runtime().providers.complete(Target(provider="anthropic", model="claude-opus-5-5"), request, None, Timeouts())
    assert info.value.status == 500
    assert CANARY_ANTHROPIC not in str(info.value) and CANARY_ANTHROPIC not in repr(info.value.args)


async def test_an_unexpected_exception_carrying_a_key_is_redacted_in_prefects_states(
    canary_keys, emulator, otel, all_logs, capfd, stack, monkeypatch
):
    from aios.providers.anthropic_provider import AnthropicProvider

    async def buggy_complete(self, target, request, feedback, timeouts):
        raise RuntimeError(f"bug: cannot use key {self.endpoint.api_key()}")

    monkeypatch.setattr(AnthropicProvider, "complete", buggy_complete)
    state = await build_skill_flow("research-lead")(return_state=True)
    assert state.is_failed()
    recorded = await everything_recorded(state.state_details.flow_run_id, otel, all_logs, capfd, stack, artifact=False)
    assert_no_canary(recorded)
    assert f"bug: cannot use key {REDACTED}" in recorded["prefect runs"]
    from flows.skill_flow import FLOW_RETRIES

    roots = [s for s in otel.spans() if s.name == "skill research-lead"]
    assert len(roots) == 1 + FLOW_RETRIES, "an exception is an infrastructure failure: the run is retried"
    for root in roots:
        assert root.status.status_code.name == "ERROR" and root.status.description == f"RuntimeError: bug: cannot use key {REDACTED}"
        (event,) = [e for e in root.events if e.name == "exception"]
        assert event.attributes["exception.message"] == f"bug: cannot use key {REDACTED}"
