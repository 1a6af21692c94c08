"""The redaction every log record, span and artifact goes through.

`redact(text)` removes API keys and bearer tokens: the values of environment variables whose names end
in `_API_KEY`, `_TOKEN`, `_SECRET`, `_PASSWORD` or `_AUTH_STRING` (read at first use and refreshed at
most once a second and at the start of every skill run), plus anything shaped like a key
(`sk-...`, `sk-ant-...`, `Bearer <token>`, `x-api-key: ...`, `"api_key": "..."`), plus every value
handed to `register_secret()` (secrets read from elsewhere, such as Prefect Secret blocks).

`install_redaction()` wraps the log-record factory, so every record of every logger (Prefect's own
included, before its console and API handlers see it) has its message, arguments and exception
text redacted.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Any

REDACTED = "[REDACTED]"
# Narrower than aios/portability/secrets.py on purpose: every value under these names is erased from all text.
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


__all__ = [
    "REDACTED",
    "RedactionFilter",
    "install_redaction",
    "redact",
    "redact_record",
    "redact_value",
    "refresh_secrets",
    "register_secret",
]
