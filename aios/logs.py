"""Logs as one JSON object per line, and the redaction every log record, span and artifact goes through.

`redact(text)` removes API keys and bearer tokens: the values of environment variables whose names end
in `_API_KEY`, `_TOKEN`, `_SECRET`, `_PASSWORD` or `_AUTH_STRING` (read at first use and refreshed at
most once a second and at the start of every skill run), plus anything shaped like a key
(`sk-...`, `sk-ant-...`, `Bearer <token>`, `x-api-key: ...`, `"api_key": "..."`), plus every value
handed to `register_secret()` (secrets read from elsewhere, such as Prefect Secret blocks).

`install_redaction()` wraps the log-record factory, so every record of every logger (Prefect's own
included, before its console and API handlers see it) has its message, arguments and exception
text redacted. `configure()` adds the JSON handler on stderr; the CLI calls `configure_from_env()`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

REDACTED = "[REDACTED]"
SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "AUTH_TOKEN", "_PASSWORD", "_AUTH_STRING")
MIN_SECRET_LENGTH = 8  # shorter values ("true", "1") are settings, not secrets, and would shred every text
REFRESH_SECONDS = 1.0

_KEY_NAMES = (
    r"x-api-key|api[-_]?key|apikey|authorization|proxy-authorization|"
    r"(?:access|auth|refresh|bearer|id)[-_]?token|token|client[-_]?secret|secret|password|passwd"
)
_PATTERN = re.compile(
    # key: value / key=value / "key": "value" (headers, JSON, query strings, SDK reprs)
    rf"(?P<kv>(?<![\w-])(?:[\w-]*[-_])?(?:{_KEY_NAMES})[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED\])(?:(?:bearer|basic|token)\s+)?"
    r"[^\s\"',;&}\]]+"
    # a bearer token wherever it appears
    r"|(?P<bearer>(?<![\w-])bearer\s+)(?!\[REDACTED\])[A-Za-z0-9._~+/=\-]{6,}"
    # key shapes: OpenAI (sk-, sk-proj-), Anthropic (sk-ant-), Prefect Cloud (pnu_)
    r"|(?<![\w-])sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,}"
    r"|(?<![\w-])pnu_[A-Za-z0-9]{16,}",
    re.IGNORECASE,
)

_secrets: tuple[str, ...] = ()
_secrets_read_at = float("-inf")
_registered: set[str] = set()
_lock = threading.Lock()


def register_secret(*values: str) -> None:
    """Redact these values from now on in this process (a secret loaded from a Prefect Secret block, say)."""
    fresh = {v.strip() for v in values if isinstance(v, str) and len(v.strip()) >= MIN_SECRET_LENGTH}
    if fresh - _registered:
        with _lock:
            _registered.update(fresh)
        refresh_secrets()


def refresh_secrets() -> None:
    """Re-read the secret-looking environment variables (after a key was set or rotated)."""
    global _secrets, _secrets_read_at
    found = {
        value
        for name, value in os.environ.items()
        if name.upper().endswith(SECRET_SUFFIXES) and len(value.strip()) >= MIN_SECRET_LENGTH
    }
    with _lock:
        found |= _registered
        _secrets = tuple(sorted((v.strip() for v in found), key=len, reverse=True))
        _secrets_read_at = time.monotonic()


def _replace(match: re.Match[str]) -> str:
    return (match.group("kv") or match.group("bearer") or "") + REDACTED


def redact(text: str) -> str:
    """`text` without API keys, tokens or the values of secret environment variables."""
    if not text:
        return text
    if not isinstance(text, str):
        text = str(text)
    if time.monotonic() - _secrets_read_at > REFRESH_SECONDS:
        refresh_secrets()
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _PATTERN.sub(_replace, text)


def redact_value(value: Any) -> Any:
    """A span/log attribute value with every string in it redacted (other types unchanged)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) if isinstance(v, str) else v for v in value)
    return value


# --- log records -----------------------------------------------------------------------------------

_formatter = logging.Formatter()


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact a record in place: the formatted message (args folded in) and the exception text."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it for the handler to report
        return record
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, ()
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = redact(_formatter.formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactionFilter(logging.Filter):
    """A filter for handlers that may receive records made before `install_redaction()` ran."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_redaction() -> None:
    """Redact every log record at creation (all loggers, all handlers). Idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_aios_redacting", False):
        return

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(factory(*args, **kwargs))

    redacting_factory._aios_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)
    refresh_secrets()


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
    "REDACTED",
    "JsonFormatter",
    "JsonLogHandler",
    "RedactionFilter",
    "bind",
    "configure",
    "configure_from_env",
    "install_redaction",
    "redact",
    "redact_record",
    "redact_value",
    "refresh_secrets",
    "register_secret",
]
