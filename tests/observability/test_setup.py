"""Telemetry setup from the environment: OTLP only when an endpoint is set, a no-op otherwise."""

from __future__ import annotations

import time

import pytest
from opentelemetry import trace

from aios.observability import otel, telemetry
from aios.core.policy import DEFAULT_TARGETS, FallbackPolicy
from aios.runs import RunStatus, SkillRun
from aios.core.triage import Triage


@pytest.fixture
def no_otel_env(monkeypatch):
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_SDK_DISABLED",
    ):
        monkeypatch.delenv(name, raising=False)
    otel.reset()
    yield
    otel.reset()


def test_without_an_endpoint_nothing_is_set_up(no_otel_env):
    tel = otel.setup()
    assert not tel.tracing and not tel.metering
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider), "the global provider is left alone"
    assert otel.setup() is tel, "set up once per process"


def test_resource_is_aios_unless_the_standard_variables_say_otherwise(monkeypatch):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert otel.resource().attributes["service.name"] == "aios"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    assert otel.resource().attributes["deployment.environment"] == "test"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "aios-eu")
    assert otel.resource().attributes["service.name"] == "aios-eu"


def test_exported_spans_are_redacted(monkeypatch):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = otel.tracer_provider(exporter, batch=False)
    tracer = provider.get_tracer("someone-else")  # e.g. Prefect's spans: not redacted at the source
    with tracer.start_as_current_span("Authorization: Bearer abcdefgh123") as span:
        span.set_attribute("headers", "x-api-key: sk-ant-api03-abcdefghijkl")
        span.set_attribute("list", ["ok", "sk-proj-abcdefghijklmnopq"])
        span.add_event("failed", {"message": "key sk-ant-api03-abcdefghijkl refused"})
        span.record_exception(RuntimeError("bad key sk-ant-api03-abcdefghijkl"))
    (exported,) = exporter.get_finished_spans()
    text = repr(
        (
            exported.name,
            dict(exported.attributes),
            [(e.name, dict(e.attributes)) for e in exported.events],
            exported.status.description,
        )
    )
    assert "abcdefgh" not in text and "[REDACTED]" in text


def test_hooks_cost_next_to_nothing_without_an_endpoint(no_otel_env):
    """The per-run work when nothing is exported: a run span and four attempt spans, well under a millisecond."""
    from aios.core.fallback import Reply
    from aios.providers.base import ModelRequest

    otel.setup()
    policy = FallbackPolicy(targets=DEFAULT_TARGETS)
    request = ModelRequest(system="s", prompt="p", schema_name="x", output_schema={"type": "object"})
    reply = Reply(content="{}")

    def one_run():
        run = SkillRun(run_id="r", skill="research-lead", triage=Triage.critical, status=RunStatus.failed)
        with telemetry.skill_run_span(run):
            attempts = telemetry.ModelAttempts(policy, request, lambda r: {})
            for target in policy.targets:
                with attempts.span(target) as call:
                    call.check(reply)
                attempts.output(reply)

    one_run()
    n = 200
    started = time.perf_counter()
    for _ in range(n):
        one_run()
    per_run_ms = (time.perf_counter() - started) / n * 1000
    assert per_run_ms < 1.0, f"{per_run_ms:.3f} ms per run with telemetry off"
