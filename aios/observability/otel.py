"""OpenTelemetry set-up and export: the providers, the instruments, and the redacting exporter.

Export: OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the `_TRACES_`/`_METRICS_` variant) is set,
nothing otherwise: no SDK is even imported and every hook of `telemetry` is a few attribute lookups.
Set up once per process, on first use. If the process already has an OpenTelemetry SDK
configured (e.g. by `opentelemetry-instrument`), its providers are used as they are.
When we create the tracer provider we make it the global one, so the spans Prefect itself opens
for flow and task runs are exported in the same traces as ours.
Everything exported goes through `redaction.redact` (a redacting exporter wraps the OTLP one).

Metrics: `gen_ai.client.operation.duration`, `gen_ai.client.token.usage`, the counters
`aios.failovers`, `aios.deferrals`, `aios.drops` and the gauge `aios.breaker.state`.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode

from aios.observability import logs
from aios.observability.redaction import install_redaction, redact, redact_value

SCOPE = "aios"
CAPTURE_CONTENT_ENV = "AIOS_OTEL_CAPTURE_CONTENT"

# Bucket boundaries the GenAI semantic conventions advise.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}
DEFAULT_SERVERS = {"anthropic": ("api.anthropic.com", 443), "openai": ("api.openai.com", 443)}


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _endpoint_set(signal: str) -> bool:
    """Is there an OTLP endpoint for `signal` ("TRACES"/"METRICS"), and is that exporter not switched off?"""
    if os.environ.get(f"OTEL_{signal}_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "").strip()
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


# --- providers -------------------------------------------------------------------------------------


class Telemetry:
    """What this process records: a tracer and the instruments, or None for a signal that is off."""

    def __init__(self, tracer: trace.Tracer | None, meter: metrics.Meter | None, capture_content: bool = False) -> None:
        self.tracer = tracer
        self.tracing = tracer is not None
        self.metering = meter is not None
        self.capture_content = capture_content
        if meter is None:
            return
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.failovers = meter.create_counter(
            "aios.failovers", unit="{failover}", description="Model calls made to a later target of the chain than the first"
        )
        self.deferrals = meter.create_counter("aios.deferrals", unit="{run}", description="Skill runs parked for later")
        self.drops = meter.create_counter("aios.drops", unit="{run}", description="Skill runs dropped during an outage")
        meter.create_observable_gauge(
            "aios.breaker.state",
            callbacks=[_breaker_observations],
            unit="1",
            description="Circuit breaker per target: 0 closed, 1 half-open, 2 open",
        )


_state: Telemetry | None = None
_setup_lock = threading.Lock()


def setup() -> Telemetry:
    """This process's telemetry, configured from the environment on first use."""
    global _state
    if _state is None:
        with _setup_lock:
            if _state is None:
                _state = _from_environment()
    return _state


def _from_environment() -> Telemetry:
    logs.configure_from_env()  # redaction of every log record; JSON lines when AIOS_JSON_LOGS=true
    capture = _env_true(CAPTURE_CONTENT_ENV)
    if _env_true("OTEL_SDK_DISABLED"):
        return Telemetry(None, None, capture)
    tracer = meter = None
    current_tp = trace.get_tracer_provider()
    if not isinstance(current_tp, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        tracer = current_tp.get_tracer(SCOPE, _version())  # configured by the application: use it as it is
    elif _endpoint_set("TRACES"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider = tracer_provider(OTLPSpanExporter())
        trace.set_tracer_provider(provider)  # Prefect's flow/task spans join our traces
        tracer = provider.get_tracer(SCOPE, _version())
    current_mp = metrics.get_meter_provider()
    if type(current_mp).__name__ not in ("_ProxyMeterProvider", "NoOpMeterProvider"):
        meter = current_mp.get_meter(SCOPE, _version())
    elif _endpoint_set("METRICS"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        provider = meter_provider(PeriodicExportingMetricReader(OTLPMetricExporter()))
        metrics.set_meter_provider(provider)
        meter = provider.get_meter(SCOPE, _version())
    return Telemetry(tracer, meter, capture)


def install(
    span_exporter: Any = None,
    metric_reader: Any = None,
    *,
    capture_content: bool | None = None,
    batch: bool = False,
) -> Telemetry:
    """Use these exporters/readers in this process instead of the environment's (tests, embedding).

    Builds the same providers as the OTLP path (resource, redaction) but leaves the global
    OpenTelemetry providers alone. `reset()` goes back to the environment's configuration.
    """
    global _state
    install_redaction()
    tracer = meter = None
    if span_exporter is not None:
        tracer = tracer_provider(span_exporter, batch=batch).get_tracer(SCOPE, _version())
    if metric_reader is not None:
        meter = meter_provider(metric_reader).get_meter(SCOPE, _version())
    capture = _env_true(CAPTURE_CONTENT_ENV) if capture_content is None else capture_content
    with _setup_lock:
        _state = Telemetry(tracer, meter, capture)
    return _state


def reset() -> None:
    """Forget the configuration; the next use reads the environment again."""
    global _state
    with _setup_lock:
        _state = None


def resource() -> Any:
    """`service.name=aios` unless OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES say otherwise."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    res = Resource.create({"service.version": _version()})
    if str(res.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        res = res.merge(Resource({SERVICE_NAME: "aios"}))
    return res


def tracer_provider(exporter: Any, batch: bool = True) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=resource())
    processor = BatchSpanProcessor if batch else SimpleSpanProcessor
    provider.add_span_processor(processor(RedactingSpanExporter(exporter)))
    return provider


def meter_provider(reader: Any) -> Any:
    from opentelemetry.sdk.metrics import MeterProvider

    return MeterProvider(resource=resource(), metric_readers=[reader])


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("aios")
    except Exception:
        return "0"


class RedactingSpanExporter:
    """Wraps a span exporter: every span (ours and Prefect's) leaves with its strings redacted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def export(self, spans: Any) -> Any:
        return self.inner.export([redacted_span(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        flush = getattr(self.inner, "force_flush", None)
        return flush(timeout_millis) if flush else True


def redacted_span(span: Any) -> Any:
    from opentelemetry.sdk.trace import Event, ReadableSpan

    status = span.status
    if status.description:
        status = Status(status.status_code, redact(status.description))
    return ReadableSpan(
        name=redact(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_clean(span.attributes),
        events=[Event(e.name, _clean(e.attributes), e.timestamp) for e in span.events],
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _clean(attributes: Any) -> dict[str, Any]:
    return {k: redact_value(v) for k, v in (attributes or {}).items()}


def record_exception(span: trace.Span, exc: BaseException) -> None:
    """`span.record_exception`, with the message and stack trace redacted first."""
    span.add_event(
        "exception",
        {
            "exception.type": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "exception.message": redact(str(exc)),
            "exception.stacktrace": redact("".join(traceback.format_exception(exc))),
        },
    )
    span.set_status(Status(StatusCode.ERROR, redact(f"{type(exc).__name__}: {exc}")))


def endpoint_info(provider: str) -> tuple[str, tuple[str, int] | None]:
    """`gen_ai.provider.name` (the endpoint's SDK) and (server.address, server.port) of an endpoint name."""
    try:
        from aios.config.runtime import get_runtime

        endpoint = get_runtime().settings.endpoints.get(provider)
    except Exception:
        endpoint = None
    kind = endpoint.kind if endpoint else provider
    url = endpoint.resolved_base_url() if endpoint else None
    if not url:
        return kind, DEFAULT_SERVERS.get(provider)
    parts = urlsplit(url)
    if not parts.hostname:
        return kind, None
    return kind, (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))


def provider_name(provider: str) -> str:
    return endpoint_info(provider)[0]


def _breaker_observations(options: Any) -> Iterable[Any]:
    from opentelemetry.metrics import Observation

    from aios.config.runtime import get_runtime

    try:
        states = get_runtime().breakers.states()
    except Exception:
        return []
    observations = []
    for key, state in states.items():
        provider, _, model = key.partition(":")
        observations.append(
            Observation(
                BREAKER_VALUES.get(state.value, 0),
                {"aios.target": key, "gen_ai.provider.name": provider_name(provider), "gen_ai.request.model": model},
            )
        )
    return observations




__all__ = [
    "RedactingSpanExporter",
    "Telemetry",
    "endpoint_info",
    "install",
    "provider_name",
    "record_exception",
    "reset",
    "setup",
]
