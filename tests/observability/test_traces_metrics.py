"""Spans and metrics of real skill runs (session stack: emulators + Prefect server), via in-memory exporters."""

from __future__ import annotations

import json

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from aios.core.fallback import Outcome
from aios.runs.record import RunStatus, SkillRun
from flows.skill_flow import build_skill_flow

pytestmark = pytest.mark.e2e

OPUS, SONNET, GPT = "anthropic:claude-opus-5-5", "anthropic:claude-sonnet-5-5", "openai:gpt-5.5"


async def run_flow(name: str, inputs: dict | None = None):
    state = await build_skill_flow(name)(inputs=inputs, return_state=True)
    return state, SkillRun.model_validate(await state.result(raise_on_failure=False))


def points(otel, name: str, **attrs) -> list:
    return [p for p in otel.metrics().get(name, []) if all(p.attributes.get(k) == v for k, v in attrs.items())]


def assert_spans_match_the_run_record(otel, run: SkillRun) -> None:
    """Every attempt that reached a model has its chat span, numbered as in the record, same outcome and error class."""
    called = [(i, a) for i, a in enumerate(run.attempts, 1) if a.outcome is not Outcome.skipped]
    chat = otel.chat_spans()
    assert [(s.attributes["aios.attempt"], s.attributes["aios.target"]) for s in chat] == [
        (i, f"{a.provider}:{a.model}") for i, a in called
    ]
    assert [(s.attributes["aios.outcome"], s.attributes.get("error.type")) for s in chat] == [
        (a.outcome.value, a.error_class.value if a.error_class else None) for _, a in called
    ]


async def test_failover_run_has_a_run_span_and_a_client_span_per_attempt(emulator, otel):
    emulator.set_fault("anthropic", "overloaded")
    state, run = await run_flow("research-lead")
    assert run.provider == "openai"

    root = otel.span_named("skill research-lead")
    assert root.attributes["prefect.flow_run.id"] == str(state.state_details.flow_run_id) == run.run_id
    assert (root.attributes["aios.skill"], root.attributes["aios.triage"]) == ("research-lead", "critical")
    assert (root.attributes["aios.run.status"], root.attributes["aios.answered_by"]) == ("completed", GPT)
    assert root.status.status_code is not StatusCode.ERROR

    chat = otel.chat_spans()
    assert [s.name for s in chat] == ["chat claude-opus-5-5", "chat claude-sonnet-5-5", "chat gpt-5.5"]
    for span in chat:
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None and span.parent.span_id == root.context.span_id
        assert span.context.trace_id == root.context.trace_id
        assert span.attributes["gen_ai.operation.name"] == "chat"
        assert span.attributes["aios.skill"] == "research-lead"
        assert span.attributes["server.address"] == "127.0.0.1" and span.attributes["server.port"] > 0
        assert "gen_ai.input.messages" not in span.attributes, "no content unless opted in"
        assert "gen_ai.output.messages" not in span.attributes
    opus, sonnet, gpt = chat
    assert opus.attributes["gen_ai.provider.name"] == "anthropic" and opus.attributes["error.type"] == "overloaded"
    assert opus.attributes["http.response.status_code"] == 529 and opus.status.status_code is StatusCode.ERROR
    assert "aios.failover.from" not in opus.attributes
    assert sonnet.attributes["aios.failover.from"] == OPUS
    assert gpt.attributes["aios.failover.from"] == SONNET
    assert gpt.attributes["gen_ai.provider.name"] == "openai" and gpt.attributes["aios.outcome"] == "ok"
    assert gpt.attributes["gen_ai.request.model"] == "gpt-5.5"
    assert gpt.attributes["gen_ai.response.model"] and gpt.attributes["gen_ai.response.id"]
    assert gpt.attributes["gen_ai.usage.input_tokens"] == run.usage.input_tokens > 0
    assert gpt.attributes["gen_ai.usage.output_tokens"] == run.usage.output_tokens > 0
    assert "error.type" not in gpt.attributes
    assert_spans_match_the_run_record(otel, run)

    failed = points(otel, "gen_ai.client.operation.duration", **{"error.type": "overloaded"})
    assert sorted(p.attributes["gen_ai.request.model"] for p in failed) == ["claude-opus-5-5", "claude-sonnet-5-5"]
    (ok,) = points(otel, "gen_ai.client.operation.duration", **{"gen_ai.request.model": "gpt-5.5"})
    assert ok.count == 1 and "error.type" not in ok.attributes and ok.sum > 0
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in points(otel, "gen_ai.client.token.usage")}
    assert tokens == {"input": run.usage.input_tokens, "output": run.usage.output_tokens}
    failovers = {
        (p.attributes["aios.failover.from"], p.attributes["aios.failover.to"]): p.value
        for p in points(otel, "aios.failovers", **{"aios.skill": "research-lead"})
    }
    assert failovers == {(OPUS, SONNET): 1, (SONNET, GPT): 1}
    breakers = {p.attributes["aios.target"]: p.value for p in points(otel, "aios.breaker.state")}
    assert breakers == {OPUS: 0, SONNET: 0, GPT: 0}, "one failure each: still closed"


async def test_open_breaker_skips_are_events_on_the_run_span_and_the_gauge_reads_open(emulator, otel, settings_env):
    settings_env(AIOS_BREAKER_THRESHOLD=1, AIOS_BREAKER_COOLDOWN=300)
    emulator.set_fault("anthropic", "overloaded")
    await run_flow("research-lead")
    breakers = {p.attributes["aios.target"]: p.value for p in points(otel, "aios.breaker.state")}
    assert breakers == {OPUS: 2, SONNET: 2, GPT: 0}

    otel.exporter.clear()
    _, run = await run_flow("research-lead")
    root = otel.span_named("skill research-lead")
    skipped = [e for e in root.events if e.name == "aios.attempt.skipped"]
    assert [(e.attributes["aios.target"], e.attributes["error.type"], e.attributes["aios.attempt"]) for e in skipped] == [
        (OPUS, "circuit_open", 1),
        (SONNET, "circuit_open", 2),
    ]
    (only,) = otel.chat_spans()
    assert only.name == "chat gpt-5.5" and only.attributes["aios.attempt"] == 3, "numbered after the two skips"
    assert only.attributes["aios.failover.from"] == SONNET, "skipped targets still count as failed over"
    assert_spans_match_the_run_record(otel, run)


async def test_an_answer_that_breaks_the_contract_is_a_failed_attempt_span(emulator, otel):
    emulator.set_fault("anthropic", "schema_invalid", model="claude-opus-5-5")
    _, run = await run_flow("research-lead")
    assert run.provider == "anthropic"
    ask, reask, *_ = otel.chat_spans()
    assert ask.attributes["error.type"] == reask.attributes["error.type"] == "invalid_answer"
    assert reask.attributes.get("aios.reask") is True and "aios.failover.from" not in reask.attributes
    assert ask.attributes["gen_ai.usage.output_tokens"] > 0, "the tokens of an invalid answer are still recorded"
    assert_spans_match_the_run_record(otel, run)


async def test_drops_and_deferrals_are_counted_per_skill(deployed, emulator, otel):
    from prefect.client.orchestration import get_client

    from aios.outage import deferral

    emulator.set_fault("anthropic", "overloaded")
    _, dropped = await run_flow("daily-news")
    assert dropped.status is RunStatus.dropped

    await deferral.set_paused(True)  # keep the parked run parked: this test only counts it
    try:
        _, deferred = await run_flow("weekly-report")
        assert deferred.status is RunStatus.deferred and deferred.parked_run_id
        async with get_client() as client:
            await client.delete_flow_run(deferred.parked_run_id)
    finally:
        await deferral.set_paused(False)

    assert [p.value for p in points(otel, "aios.drops", **{"aios.skill": "daily-news"})] == [1]
    assert [p.value for p in points(otel, "aios.deferrals", **{"aios.skill": "weekly-report"})] == [1]
    statuses = {s.attributes["aios.skill"]: s.attributes["aios.run.status"] for s in otel.spans() if s.name.startswith("skill ")}
    assert statuses == {"daily-news": "dropped", "weekly-report": "deferred"}
    assert otel.span_named("skill weekly-report").attributes["aios.parked_run_id"] == deferred.parked_run_id


async def test_failed_run_span_is_an_error_with_the_reason(emulator, otel):
    emulator.set_fault("anthropic", "overloaded")
    emulator.set_fault("openai", "error_500")
    _, run = await run_flow("research-lead")
    assert run.status is RunStatus.failed
    root = otel.span_named("skill research-lead")
    assert root.status.status_code is StatusCode.ERROR and "all targets failed" in root.status.description
    assert root.attributes["aios.run.status"] == "failed"
    assert_spans_match_the_run_record(otel, run)


async def test_prompt_and_answer_are_recorded_only_when_opted_in(emulator, otel):
    from aios.observability import otel as telemetry_setup

    telemetry_setup.install(otel.exporter, capture_content=True)
    _, run = await run_flow("research-lead", {"company": "Canary Widgets GmbH"})
    (span,) = otel.chat_spans()
    messages = json.loads(span.attributes["gen_ai.input.messages"])
    assert messages[0]["role"] == "user" and "Canary Widgets GmbH" in messages[0]["parts"][0]["content"]
    assert json.loads(span.attributes["gen_ai.system_instructions"])[0]["type"] == "text"
    (answer,) = json.loads(span.attributes["gen_ai.output.messages"])
    assert json.loads(answer["parts"][0]["content"]) == run.output
