"""Logs as one JSON object per line, with the run's context (skill, flow run, trace) on each.

`configure()` adds the JSON handler on stderr; the CLI calls `configure_from_env()`. Every record is
redacted first (`aios.observability.redaction`).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from aios.observability.redaction import RedactionFilter, install_redaction, redact, redact_record

# --- run context for log lines ---------------------------------------------------------------------

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("aios_log_context", default={})


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add fields (skill, flow_run_id, ...) to every JSON log line written inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


# --- JSON lines ------------------------------------------------------------------------------------

CONTEXT_FIELDS = ("skill", "flow_run_id", "task_run_id", "provider", "model", "outcome")


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, then skill, flow_run_id, provider, model, outcome where known."""

    def format(self, record: logging.LogRecord) -> str:
        redact_record(record)  # cheap when the record factory already did it
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        bound = _context.get()
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is None or value == "<unknown>":
                value = bound.get(name)
            if value is None and name == "skill":
                value = getattr(record, "flow_name", None)  # Prefect's run loggers: the flow is the skill
            if value is not None:
                entry[name] = str(value)
        trace_id, span_id = _current_trace()
        if trace_id:
            entry["trace_id"], entry["span_id"] = trace_id, span_id
        if record.exc_info or record.exc_text:
            entry["exception"] = record.exc_text or redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def _current_trace() -> tuple[str | None, str | None]:
    if "opentelemetry.trace" not in sys.modules:
        return None, None
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


class JsonLogHandler(logging.StreamHandler):
    """stderr, one JSON object per line. (Its class name tells Prefect's logging setup to leave root alone.)"""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.setFormatter(JsonFormatter())
        self.addFilter(RedactionFilter())


_handler: JsonLogHandler | None = None


def configure(level: str | int | None = None, stream: TextIO | None = None, replace_console: bool = True) -> logging.Handler:
    """Write logs as JSON lines on stderr (idempotent).

    The handler goes on the root logger, where Prefect's flow- and task-run loggers propagate, so
    their records are JSON too. Prefect's console handler on the root logger is replaced (stderr
    stays pure JSON); Prefect's API handlers, which feed the logs tab of the UI, are left alone.
    `aios.*` loggers log at `level` (default `AIOS_LOG_LEVEL` or INFO).
    """
    global _handler
    install_redaction()
    root = logging.getLogger()
    if _handler is None or stream is not None:
        if _handler is not None:
            root.removeHandler(_handler)
        _handler = JsonLogHandler(stream)
    if _handler not in root.handlers:
        root.addHandler(_handler)
    if replace_console:
        for handler in list(root.handlers):
            if type(handler).__name__ == "PrefectConsoleHandler":
                root.removeHandler(handler)
    logging.getLogger("aios").setLevel(level or os.environ.get("AIOS_LOG_LEVEL", "INFO").upper())
    return _handler


def json_logs_requested() -> bool:
    return os.environ.get("AIOS_JSON_LOGS", "").strip().lower() in ("1", "true", "yes", "on")


def configure_from_env() -> bool:
    """Redaction always; JSON lines on stderr when `AIOS_JSON_LOGS=true`. Returns whether JSON is on."""
    install_redaction()
    if json_logs_requested():
        configure()
        return True
    return False


__all__ = [
    "JsonFormatter",
    "JsonLogHandler",
    "bind",
    "configure",
    "configure_from_env",
]
