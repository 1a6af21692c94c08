"""Telemetry setup from the environment: OTLP only when an endpoint is set, a no-op otherwise."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from aios.observability import otel, telemetry
from aios.core.policy import DEFAULT_TARGETS


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


HOOKS_WITHOUT_AN_ENDPOINT = """
import json, sys
from opentelemetry import trace
from aios.observability import otel, telemetry
from aios.core.fallback import Attempt, AttemptStart, Outcome, Reply
from aios.core.policy import DEFAULT_TARGETS, FallbackPolicy
from aios.core.triage import Triage
from aios.providers.base import ModelRequest
from aios.runs.record import RunStatus, SkillRun

policy = FallbackPolicy(targets=DEFAULT_TARGETS)
request = ModelRequest(system="s", prompt="p", schema_name="x", output_schema={"type": "object"})
reply = Reply(content="{}")
spans = []
run = SkillRun(run_id="r", skill="research-lead", triage=Triage.critical, status=RunStatus.failed)
with telemetry.skill_run_span(run):
    spans.append(trace.get_current_span().is_recording())
    attempts = telemetry.ModelAttempts(policy, request)
    for number, target in enumerate(policy.targets, 1):
        with attempts.before_attempt(AttemptStart(target, number)) as call:
            attempts.on_attempt(Attempt(provider=target.provider, model=target.model, outcome=Outcome.ok), None, reply)
            spans.append(call.span is not None)
print(json.dumps({
    "calls": len(policy.targets),
    "recording": spans,
    "sdk": sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")),
    "provider": type(trace.get_tracer_provider()).__name__,
}))
"""


def test_hooks_record_nothing_and_load_no_sdk_without_an_endpoint(no_otel_env, tmp_path):
    """Without an endpoint a run's hooks open no span and never import the OpenTelemetry SDK.

    What the hooks cost per run is bench/observability.py's figure, not an assertion here.
    """
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.run(
        [sys.executable, "-c", HOOKS_WITHOUT_AN_ENDPOINT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert seen["calls"] == len(DEFAULT_TARGETS) > 1
    assert seen["recording"] == [False] * (1 + seen["calls"]), "no span for the run nor for any call"
    assert seen["sdk"] == [], "the SDK is not even imported"
    assert seen["provider"] == "ProxyTracerProvider"
