"""OpenTelemetry traces and metrics for skill runs, after the GenAI semantic conventions.

Traces: one span per skill run (`skill {name}`) and, under it, one CLIENT span per model call
(`chat {model}`) with the `gen_ai.*` attributes plus ours (`aios.attempt` = the call's number in the
run's attempt list, `aios.failover.from` = the target before this one in the chain on the first call
to a later target, `aios.outcome`, ...). Targets skipped without a call (circuit open, context window
too small) are events named `aios.attempt.skipped` on the run span, numbered the same way. Prompts
and answers are recorded only when `AIOS_OTEL_CAPTURE_CONTENT=true`. (The Anthropic SDK's own
`anthropic.messages.create` span, when a global provider is set, nests under our `chat` span.)

Metrics: `gen_ai.client.operation.duration`, `gen_ai.client.token.usage`, the counters
`aios.failovers`, `aios.deferrals`, `aios.drops` and the gauge `aios.breaker.state`.

Export: OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the `_TRACES_`/`_METRICS_` variant) is set,
nothing otherwise: no SDK is even imported and every hook below is a few attribute lookups.
Set up once per process, on first use. If the process already has an OpenTelemetry SDK
configured (e.g. by `opentelemetry-instrument`), its providers are used as they are.
When we create the tracer provider we make it the global one, so the spans Prefect itself opens
for flow and task runs are exported in the same traces as ours.
Everything exported goes through `aios.logs.redact` (a redacting exporter wraps the OTLP one).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from aios import logs
from aios.core.errors import ProviderFailure, classify
from aios.logs import redact

if TYPE_CHECKING:
    from aios.core.fallback import Reply
    from aios.core.policy import FallbackPolicy, Target
    from aios.providers.base import ModelRequest
    from aios.runs import SkillRun

SCOPE = "aios"
CAPTURE_CONTENT_ENV = "AIOS_OTEL_CAPTURE_CONTENT"
TRACE_URL_ENV = "AIOS_TRACE_URL_TEMPLATE"

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
    logs.install_redaction()
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
    return {k: logs.redact_value(v) for k, v in (attributes or {}).items()}


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


# --- skill runs ------------------------------------------------------------------------------------


@dataclass
class _RunInfo:
    skill: str
    triage: str
    span: trace.Span | None


_run: contextvars.ContextVar[_RunInfo | None] = contextvars.ContextVar("aios_run", default=None)


@contextlib.contextmanager
def skill_run_span(run: SkillRun) -> Iterator[None]:
    """The span of one skill run; at exit it records the run's status, skips, deferral or drop."""
    tel = setup()
    logs.refresh_secrets()  # a key set since the last run is redacted from this run on
    flow_run_id = _flow_run_id()
    span = None
    if tel.tracing:
        attributes = {"aios.skill": run.skill, "aios.triage": run.triage.value, "aios.run.id": run.run_id}
        if flow_run_id:
            attributes["prefect.flow_run.id"] = flow_run_id
        span = tel.tracer.start_span(f"skill {run.skill}", attributes=attributes)
    token = _run.set(_RunInfo(run.skill, run.triage.value, span))
    try:
        with logs.bind(skill=run.skill, flow_run_id=flow_run_id), _use(span):
            try:
                yield
            except BaseException as exc:
                if span is not None:
                    record_exception(span, exc)
                    span.set_attribute("aios.run.status", "failed")
                raise
            _finish_run(tel, span, run)
    finally:
        _run.reset(token)
        if span is not None:
            span.end()


def _use(span: trace.Span | None) -> contextlib.AbstractContextManager:
    if span is None:
        return contextlib.nullcontext()
    return trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False)


def _flow_run_id() -> str | None:
    try:
        from prefect.context import FlowRunContext
    except ImportError:  # pragma: no cover
        return None
    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx and ctx.flow_run else None


def _finish_run(tel: Telemetry, span: trace.Span | None, run: SkillRun) -> None:
    status = run.status.value
    if tel.metering and status in ("deferred", "dropped"):
        counter = tel.deferrals if status == "deferred" else tel.drops
        counter.add(1, {"aios.skill": run.skill, "aios.triage": run.triage.value})
    if span is None or not span.is_recording():
        return
    span.set_attribute("aios.run.status", status)
    span.set_attribute("aios.attempts", len(run.attempts))
    if run.provider:
        span.set_attribute("aios.answered_by", f"{run.provider}:{run.model}")
    if run.reason:
        span.set_attribute("aios.reason", redact(run.reason))
    if run.parked_run_id:
        span.set_attribute("aios.parked_run_id", run.parked_run_id)
    if run.misconfigured:
        span.set_attribute("aios.misconfigured", list(run.misconfigured))
    for index, attempt in enumerate(run.attempts, 1):
        if attempt.outcome.value != "skipped":
            continue
        span.add_event(
            "aios.attempt.skipped",
            {
                "aios.attempt": index,
                "aios.target": f"{attempt.provider}:{attempt.model}",
                "gen_ai.provider.name": _provider_name(attempt.provider),
                "gen_ai.request.model": attempt.model,
                "error.type": attempt.error_class.value if attempt.error_class else "skipped",
                "aios.outcome": "skipped",
            },
        )
    if status == "failed":
        span.set_status(Status(StatusCode.ERROR, redact(run.reason or "no valid output")))


# --- model calls -----------------------------------------------------------------------------------


class ModelAttempts:
    """The calls of one fallback chain (one `call_model` task): a `chat {model}` span and metrics per call.

    The answer is validated inside the call's span, so an answer that breaks the contract shows as
    a failed attempt (`error.type=invalid_answer`) like it does in the run's record; `output(reply)`
    hands the loop the output checked there. A `ProviderFailure` leaves with its message redacted,
    so the attempt records, the state store and Prefect's state messages never carry a key an
    upstream echoed back.
    """

    def __init__(self, policy: FallbackPolicy, request: ModelRequest, validate: Callable[[Reply], dict[str, Any]]) -> None:
        self.tel = setup()
        self.policy = policy
        self.request = request
        self.validate = validate
        self.run = _run.get()
        self.count = 0
        self._position = {t.key: i for i, t in enumerate(policy.targets)}
        self._called: set[str] = set()
        self._outputs: dict[int, dict[str, Any]] = {}

    @contextlib.contextmanager
    def span(self, target: Target, feedback: str | None = None) -> Iterator[_Call]:
        self.count += 1
        position = self._position.get(target.key, 0)
        # Targets before this one that were never called were skipped: one attempt record each, so
        # `aios.attempt` is this call's number in the run's attempt list (the artifact's "#").
        skipped = sum(1 for t in self.policy.targets[:position] if t.key not in self._called)
        failover_from = None
        if target.key not in self._called:
            self._called.add(target.key)
            if position > 0:
                failover_from = self.policy.targets[position - 1].key
        call = _Call(self, target, self.count + skipped)
        tel = self.tel
        if tel.tracing:
            call.span = tel.tracer.start_span(
                f"chat {target.model}",
                context=trace.set_span_in_context(self.run.span) if self.run and self.run.span else None,
                kind=SpanKind.CLIENT,
                attributes=self._start_attributes(call, failover_from, feedback),
            )
        started = time.perf_counter()
        try:
            with _use(call.span):
                yield call
        except ProviderFailure as failure:
            failure.message = redact(failure.message)
            failure.args = (failure.message,)
            call.error_type = classify(failure, max_retry_after=self.policy.max_retry_after).error_class.value
            if call.span is not None:
                call.span.set_attribute("error.type", call.error_type)
                call.span.set_attribute("aios.outcome", "failed")
                if failure.status:
                    call.span.set_attribute("http.response.status_code", failure.status)
                call.span.set_status(Status(StatusCode.ERROR, f"{call.error_type}: {failure.message}"))
            raise
        except BaseException as exc:
            # Not a provider failure (a bug, a cancellation): Prefect will show its text in the run's
            # state, so string arguments are redacted in place too (best effort: most exceptions
            # build their message from args).
            with contextlib.suppress(Exception):
                exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)
            call.error_type = type(exc).__qualname__
            if call.span is not None:
                call.span.set_attribute("error.type", call.error_type)
                call.span.set_attribute("aios.outcome", "failed")
                record_exception(call.span, exc)
            raise
        else:
            if call.span is not None:
                call.span.set_attribute("aios.outcome", "ok")
        finally:
            if tel.metering:
                self._record_metrics(call, time.perf_counter() - started, failover_from)
            if call.span is not None:
                call.span.end()

    def output(self, reply: Reply) -> dict[str, Any]:
        """The output validated inside the call's span (the fallback loop's `validate`)."""
        output = self._outputs.pop(id(reply), None)
        return output if output is not None else self.validate(reply)

    def _start_attributes(self, call: _Call, failover_from: str | None, feedback: str | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": call.provider_name,
            "gen_ai.request.model": call.target.model,
            "gen_ai.request.max_tokens": self.request.max_tokens,
            "aios.target": call.target.key,
            "aios.attempt": call.number,
            "aios.request": self.request.schema_name,
        }
        if call.server:
            attributes["server.address"], attributes["server.port"] = call.server
        if self.run:
            attributes["aios.skill"] = self.run.skill
            attributes["aios.triage"] = self.run.triage
        if failover_from:
            attributes["aios.failover.from"] = failover_from
        if feedback:
            attributes["aios.reask"] = True
        if self.tel.capture_content:
            from aios.providers.base import user_turns

            attributes["gen_ai.system_instructions"] = _json([{"type": "text", "content": self.request.system}])
            turns = user_turns(self.request, feedback)
            attributes["gen_ai.input.messages"] = _json(
                [{"role": t["role"], "parts": [{"type": "text", "content": t["content"]}]} for t in turns]
            )
        return attributes

    def _record_metrics(self, call: _Call, seconds: float, failover_from: str | None) -> None:
        tel = self.tel
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": call.provider_name,
            "gen_ai.request.model": call.target.model,
        }
        if call.server:
            attributes["server.address"], attributes["server.port"] = call.server
        if call.reply is not None and call.reply.response_model:
            attributes["gen_ai.response.model"] = call.reply.response_model
        if call.error_type:
            attributes["error.type"] = call.error_type
        tel.duration.record(seconds, attributes)
        if call.reply is not None:
            usage = call.reply.usage
            base = {k: v for k, v in attributes.items() if k != "error.type"}
            tel.tokens.record(usage.input_tokens, {**base, "gen_ai.token.type": "input"})
            tel.tokens.record(usage.output_tokens, {**base, "gen_ai.token.type": "output"})
        if failover_from:
            tel.failovers.add(
                1,
                {
                    "aios.skill": self.run.skill if self.run else "",
                    "aios.failover.from": failover_from,
                    "aios.failover.to": call.target.key,
                },
            )


class _Call:
    """One model call inside `ModelAttempts.span`."""

    def __init__(self, attempts: ModelAttempts, target: Target, number: int) -> None:
        self.attempts = attempts
        self.target = target
        self.number = number
        self.span: trace.Span | None = None
        self.reply: Reply | None = None
        self.error_type: str | None = None
        observed = attempts.tel.tracing or attempts.tel.metering
        self.provider_name, self.server = _endpoint_info(target.provider) if observed else (target.provider, None)

    def check(self, reply: Reply) -> Reply:
        """Record what came back (model, id, usage), then check the contract inside this call's span."""
        self.reply = reply
        span = self.span
        if span is not None:
            if reply.response_model:
                span.set_attribute("gen_ai.response.model", reply.response_model)
            if reply.response_id:
                span.set_attribute("gen_ai.response.id", reply.response_id)
            if reply.finish_reason:
                span.set_attribute("gen_ai.response.finish_reasons", [reply.finish_reason])
            span.set_attribute("gen_ai.usage.input_tokens", reply.usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", reply.usage.output_tokens)
            if self.attempts.tel.capture_content:
                content = reply.content if isinstance(reply.content, str) else _json(reply.content)
                message = {"role": "assistant", "parts": [{"type": "text", "content": content}]}
                if reply.finish_reason:
                    message["finish_reason"] = reply.finish_reason
                span.set_attribute("gen_ai.output.messages", _json([message]))
        self.attempts._outputs[id(reply)] = self.attempts.validate(reply)
        return reply


def _json(value: Any) -> str:
    return redact(json.dumps(value, default=str, ensure_ascii=False))


def _endpoint_info(provider: str) -> tuple[str, tuple[str, int] | None]:
    """`gen_ai.provider.name` (the endpoint's SDK) and (server.address, server.port) of an endpoint name."""
    try:
        from aios.runtime import get_runtime

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


def _provider_name(provider: str) -> str:
    return _endpoint_info(provider)[0]


def _breaker_observations(options: Any) -> Iterable[Any]:
    from opentelemetry.metrics import Observation

    from aios.runtime import get_runtime

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
                {"aios.target": key, "gen_ai.provider.name": _provider_name(provider), "gen_ai.request.model": model},
            )
        )
    return observations


# --- links -----------------------------------------------------------------------------------------


def current_trace_id() -> str | None:
    """The 32-hex-digit id of the trace being recorded here, if any."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid and ctx.trace_flags.sampled else None


def trace_url() -> str | None:
    """`AIOS_TRACE_URL_TEMPLATE` (e.g. `http://localhost:16686/trace/{trace_id}`) for the current trace."""
    template = os.environ.get(TRACE_URL_ENV, "").strip()
    trace_id = current_trace_id() if template else None
    if not trace_id:
        return None
    span_id = format(trace.get_current_span().get_span_context().span_id, "016x")
    try:
        return template.format(trace_id=trace_id, span_id=span_id)
    except (KeyError, IndexError, ValueError):
        return None


__all__ = [
    "ModelAttempts",
    "RedactingSpanExporter",
    "Telemetry",
    "current_trace_id",
    "install",
    "record_exception",
    "reset",
    "setup",
    "skill_run_span",
    "trace_url",
]
