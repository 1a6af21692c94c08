"""`aios run` in a fresh process exports traces and metrics over OTLP/HTTP and writes JSON logs, with no key in any of it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import CANARIES, CANARY_ANTHROPIC, CANARY_OPENAI

pytestmark = pytest.mark.e2e


def decode(receiver):
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    spans, resources, metric_names = [], [], set()
    for body in receiver.bodies.get("/v1/traces", []):
        request = ExportTraceServiceRequest.FromString(body)
        for rs in request.resource_spans:
            resources.append({a.key: a.value.string_value for a in rs.resource.attributes})
            for ss in rs.scope_spans:
                spans += [(ss.scope.name, s) for s in ss.spans]
    for body in receiver.bodies.get("/v1/metrics", []):
        request = ExportMetricsServiceRequest.FromString(body)
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                metric_names |= {m.name for m in sm.metrics}
    return spans, resources, metric_names


def attrs(span) -> dict:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}


def test_aios_run_exports_over_otlp_and_logs_json_lines(emulator, stack, otlp_receiver):
    emulator.set_fault("anthropic", "overloaded")
    env = {
        **stack.env,
        "AIOS_MEMORY_EXTRACTION": "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.url,
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
        "AIOS_JSON_LOGS": "true",
        "ANTHROPIC_API_KEY": CANARY_ANTHROPIC,
        "OPENAI_API_KEY": CANARY_OPENAI,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "aios.cli", "run", "research-lead", "--json"],
        env=env,
        cwd=stack.project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["provider"] == "openai"

    # Traces: our spans, and Prefect's own task span, in one trace from a service called aios.
    spans, resources, metric_names = decode(otlp_receiver)
    names = [s.name for _, s in spans]
    assert {"skill research-lead", "chat claude-opus-5-5", "chat claude-sonnet-5-5", "chat gpt-5.5"} <= set(names)
    assert any(scope == "prefect" and n.startswith("call-model") for scope, n in ((sc, s.name) for sc, s in spans)), names
    assert len({s.trace_id for _, s in spans}) == 1, "Prefect's spans and ours share the run's trace"
    assert all(r["service.name"] == "aios" and r["deployment.environment"] == "test" for r in resources)
    (root,) = [s for _, s in spans if s.name == "skill research-lead"]
    assert attrs(root)["prefect.flow_run.id"] == summary["run_id"]
    gpt = next(s for _, s in spans if s.name == "chat gpt-5.5")
    assert gpt.kind == 3 and attrs(gpt)["gen_ai.provider.name"] == "openai"  # SPAN_KIND_CLIENT
    assert attrs(gpt)["aios.failover.from"] == "anthropic:claude-sonnet-5-5"

    # Metrics: flushed when the process exits.
    assert {
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "aios.failovers",
        "aios.breaker.state",
    } <= metric_names

    # Logs: JSON lines on stderr, Prefect's records included, with the run's fields.
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    (ours,) = [line for line in lines if line["logger"] == "aios.run"]
    assert ours["skill"] == "research-lead" and ours["flow_run_id"] == summary["run_id"]
    assert (ours["provider"], ours["model"], ours["outcome"]) == ("openai", "gpt-5.5", "completed")
    assert ours["trace_id"] == root.trace_id.hex(), "log lines carry the trace id"
    assert any(line["logger"] == "prefect.flow_runs" for line in lines), "Prefect's run logs are JSON too"

    everything = proc.stdout + proc.stderr + "".join(b.decode("latin-1") for bs in otlp_receiver.bodies.values() for b in bs)
    assert not [c for c in CANARIES if c in everything]

