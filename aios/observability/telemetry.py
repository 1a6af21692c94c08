"""Traces and metrics of skill runs, after the GenAI semantic conventions.

Traces: one span per skill run (`skill {name}`) and, under it, one CLIENT span per model call
(`chat {model}`) with the `gen_ai.*` attributes plus ours (`aios.attempt` = the call's number in the
run's attempt list, `aios.failover.from` = the target before this one in the chain on the first call
to a later target, `aios.hedge` on a call started in parallel with a late primary, `aios.outcome`
= ok, failed or hedge_cancelled, ...). Targets skipped without a call (circuit open, context window
too small) are events named `aios.attempt.skipped` on the run span, numbered the same way. Prompts
and answers are recorded only when `AIOS_OTEL_CAPTURE_CONTENT=true`. (The Anthropic SDK's own
`anthropic.messages.create` span, when a global provider is set, nests under our `chat` span.)
Set-up and export live in `otel`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from aios.core.failures import Verdict
from aios.core.fallback import Attempt, AttemptHooks, AttemptStart, Outcome
from aios.observability import logs
from aios.observability.otel import Telemetry, endpoint_info, provider_name, record_exception, setup
from aios.observability.redaction import redact, refresh_secrets

if TYPE_CHECKING:
    from aios.core.fallback import Reply
    from aios.core.policy import FallbackPolicy, Target
    from aios.providers.base import ModelRequest
    from aios.runs.record import SkillRun

TRACE_URL_ENV = "AIOS_TRACE_URL_TEMPLATE"


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
    refresh_secrets()  # a key set since the last run is redacted from this run on
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
    if status == "failed":
        span.set_status(Status(StatusCode.ERROR, redact(run.reason or "no valid output")))


# --- model calls -----------------------------------------------------------------------------------


class ModelAttempts(AttemptHooks):
    """The fallback loop's observer for one chain (one `call_model` task): a `chat {model}` span and metrics per call.

    `before_attempt` opens the span around the call and the validation of its reply, so the SDK's
    own span nests under it and an answer that breaks the contract shows as a failed attempt; the
    loop's `on_attempt` tells it how the attempt settled (the loop classifies, this only records),
    and `on_skip` adds an `aios.attempt.skipped` event to the run's span.
    """

    def __init__(self, policy: FallbackPolicy, request: ModelRequest) -> None:
        self.tel = setup()
        self.policy = policy
        self.request = request
        self.run = _run.get()

    @contextlib.contextmanager
    def before_attempt(self, start: AttemptStart) -> Iterator[_Call]:
        call = _Call(self, start)
        tel = self.tel
        if tel.tracing:
            call.span = tel.tracer.start_span(
                f"chat {start.target.model}",
                context=trace.set_span_in_context(self.run.span) if self.run and self.run.span else None,
                kind=SpanKind.CLIENT,
                attributes=self._start_attributes(call),
            )
        token = _call.set(call)
        started = time.perf_counter()
        try:
            with _use(call.span):
                yield call
        except BaseException as exc:
            if not call.settled:
                # Not a settled attempt (a bug, a cancellation from outside): Prefect will show its
                # text in the run's state, so string arguments are redacted in place (best effort:
                # most exceptions build their message from args).
                with contextlib.suppress(Exception):
                    exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)
                call.error_type = type(exc).__qualname__
                if call.span is not None:
                    call.span.set_attribute("error.type", call.error_type)
                    call.span.set_attribute("aios.outcome", "failed")
                    record_exception(call.span, exc)
            raise
        finally:
            _call.reset(token)
            if tel.metering:
                self._record_metrics(call, time.perf_counter() - started)
            if call.span is not None:
                call.span.end()

    def on_attempt(self, attempt: Attempt, verdict: Verdict | None, reply: Reply | None) -> None:
        call = _call.get()
        if call is None:  # pragma: no cover - the loop calls this inside before_attempt
            return
        call.settled = True
        if reply is not None:
            call.saw(reply)
        outcome = attempt.outcome.value
        if verdict is not None:
            call.error_type = verdict.error_class.value
        elif attempt.outcome is not Outcome.ok:
            call.error_type = outcome
        span = call.span
        if span is None:
            return
        span.set_attribute("aios.outcome", outcome if attempt.outcome is not Outcome.failed else "failed")
        if call.error_type:
            span.set_attribute("error.type", call.error_type)
            if attempt.status:
                span.set_attribute("http.response.status_code", attempt.status)
            span.set_status(Status(StatusCode.ERROR, f"{call.error_type}: {attempt.message or outcome}"))

    def on_skip(self, number: int, attempt: Attempt) -> None:
        span = self.run.span if self.run else None
        if span is None or not span.is_recording():
            return
        span.add_event(
            "aios.attempt.skipped",
            {
                "aios.attempt": number,
                "aios.target": f"{attempt.provider}:{attempt.model}",
                "gen_ai.provider.name": provider_name(attempt.provider),
                "gen_ai.request.model": attempt.model,
                "error.type": attempt.error_class.value if attempt.error_class else "skipped",
                "aios.outcome": "skipped",
            },
        )

    def _start_attributes(self, call: _Call) -> dict[str, Any]:
        start = call.start
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": call.provider_name,
            "gen_ai.request.model": start.target.model,
            "gen_ai.request.max_tokens": self.request.max_tokens,
            "aios.target": start.target.key,
            "aios.attempt": start.number,
            "aios.request": self.request.schema_name,
        }
        if call.server:
            attributes["server.address"], attributes["server.port"] = call.server
        if self.run:
            attributes["aios.skill"] = self.run.skill
            attributes["aios.triage"] = self.run.triage
        if start.failover_from:
            attributes["aios.failover.from"] = start.failover_from.key
        if start.feedback:
            attributes["aios.reask"] = True
        if start.hedge:
            attributes["aios.hedge"] = True
        if self.tel.capture_content:
            from aios.providers.base import user_turns

            attributes["gen_ai.system_instructions"] = _json([{"type": "text", "content": self.request.system}])
            turns = user_turns(self.request, start.feedback)
            attributes["gen_ai.input.messages"] = _json(
                [{"role": t["role"], "parts": [{"type": "text", "content": t["content"]}]} for t in turns]
            )
        return attributes

    def _record_metrics(self, call: _Call, seconds: float) -> None:
        tel = self.tel
        target = call.start.target
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": call.provider_name,
            "gen_ai.request.model": target.model,
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
        if call.start.failover_from:
            tel.failovers.add(
                1,
                {
                    "aios.skill": self.run.skill if self.run else "",
                    "aios.failover.from": call.start.failover_from.key,
                    "aios.failover.to": target.key,
                },
            )


class _Call:
    """One model call inside `ModelAttempts.before_attempt`."""

    def __init__(self, attempts: ModelAttempts, start: AttemptStart) -> None:
        self.attempts = attempts
        self.start = start
        self.span: trace.Span | None = None
        self.reply: Reply | None = None
        self.error_type: str | None = None
        self.settled = False  # the loop reported this attempt's outcome
        observed = attempts.tel.tracing or attempts.tel.metering
        self.provider_name, self.server = endpoint_info(start.target.provider) if observed else (start.target.provider, None)

    def saw(self, reply: Reply) -> None:
        """Record what came back: model, id, usage (and the answer, when content capture is on)."""
        self.reply = reply
        span = self.span
        if span is None:
            return
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


_call: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("aios_call", default=None)


def _json(value: Any) -> str:
    return redact(json.dumps(value, default=str, ensure_ascii=False))


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


__all__ = ["ModelAttempts", "current_trace_id", "skill_run_span", "trace_url"]
