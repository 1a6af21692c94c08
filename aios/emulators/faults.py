"""Fault-injection state for the emulators: rules per (provider, model) and a request log.

State lives in the emulator process and is switched at run time through the control
API, so a test (or a person at a terminal) can take Claude down mid-run and watch the
runtime fail over. Everything runs on one event loop, so no locking is needed.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aios.emulators.statuspage import StatusBoard

Provider = Literal["anthropic", "openai"]
PROVIDERS: tuple[str, ...] = ("anthropic", "openai")
ANY_MODEL = "*"

# mode -> HTTP status the emulator answers with (None: no normal answer is sent).
MODES: dict[str, int | None] = {
    "ok": 200,
    "overloaded": 529,  # OpenAI has no 529: it answers 503 "engine is currently overloaded"
    "error_500": 500,
    "error_502": 502,
    "unavailable": 503,
    "gateway_timeout": 504,
    "rate_limited": 429,
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,  # the model name is unknown to this endpoint
    "context_length": 400,
    "hang": None,
    "refused": None,  # the connection closes before a byte of answer (refused or reset on the way)
    "slow": 200,
    "malformed_json": 200,
    "truncated_json": 200,  # 200 whose JSON stops mid-value; content-length matches what is sent
    "schema_invalid": 200,
    "cut": 200,
    "empty_body": 200,  # 200 with an empty application/json body
    "not_json": 200,  # 200 with an HTML page (a captive portal or a misrouted proxy)
    "refusal": 200,  # a well-formed answer in which the model refuses
    "empty_content": 200,  # a well-formed answer with no content at all
    "max_tokens": 200,  # the answer stops at max_tokens: truncated text, stop/finish reason says so
    "echo_key": 500,  # an error whose message (and an x-echo-api-key header) repeats the caller's key
}
# How a rate_limited answer states its wait: both headers (the default), one of them, or an HTTP date.
RETRY_HEADERS: tuple[str, ...] = ("both", "seconds", "ms", "date")
DEFAULT_RETRY_AFTER = 1.0
DEFAULT_SLOW_DELAY = 2.0
DEFAULT_HANG_SECONDS = 3600.0


class FaultError(ValueError):
    """A control request that names an unknown provider or mode."""


@dataclass
class FaultRule:
    provider: str
    model: str
    mode: str
    times: int | None = None  # remaining matching requests; None = until cleared
    delay: float | None = None  # slow: seconds before answering; hang: max seconds to hold
    retry_after: float | None = None  # rate_limited: seconds to ask the client to wait
    retry_header: str = "both"  # rate_limited: which header(s) carry the wait (see RETRY_HEADERS)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Decision:
    """What to do with one request: the mode plus its parameters."""

    mode: str = "ok"
    delay: float | None = None
    retry_after: float | None = None
    retry_header: str = "both"


class FaultBook:
    """Rules keyed by (provider, model); a model rule beats the provider-wide '*' rule."""

    def __init__(self) -> None:
        self._rules: dict[tuple[str, str], FaultRule] = {}

    def set(self, rule: FaultRule) -> FaultRule:
        if rule.provider not in PROVIDERS:
            raise FaultError(f"unknown provider {rule.provider!r}; expected one of {list(PROVIDERS)}")
        if rule.mode not in MODES:
            raise FaultError(f"unknown mode {rule.mode!r}; expected one of {list(MODES)}")
        if rule.retry_header not in RETRY_HEADERS:
            raise FaultError(f"unknown retry_header {rule.retry_header!r}; expected one of {list(RETRY_HEADERS)}")
        if rule.times is not None and rule.times < 1:
            raise FaultError("times must be a positive integer or null")
        self._rules[(rule.provider, rule.model or ANY_MODEL)] = rule
        return rule

    def clear(self, provider: str | None = None, model: str | None = None) -> None:
        for key in list(self._rules):
            if (provider is None or key[0] == provider) and (model is None or key[1] == model):
                del self._rules[key]

    def rules(self) -> list[dict[str, Any]]:
        return [rule.to_json() for rule in self._rules.values()]

    def take(self, provider: str, model: str) -> Decision:
        """Pick the rule for one request and use up one of its `times`."""
        key = (provider, model) if (provider, model) in self._rules else (provider, ANY_MODEL)
        rule = self._rules.get(key)
        if rule is None:
            return Decision()
        if rule.times is not None:
            rule.times -= 1
            if rule.times <= 0:
                del self._rules[key]  # used up: the next request falls through to the next rule / ok
        return Decision(rule.mode, rule.delay, rule.retry_after, rule.retry_header)


class RequestLog:
    """Every LLM request the emulator received, newest last (bounded)."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._seq = 0

    def record(self, provider: str, model: str, path: str) -> dict[str, Any]:
        """Log a request on arrival; the handler fills in status and mode as it goes."""
        self._seq += 1
        entry: dict[str, Any] = {
            "seq": self._seq,
            "time": time.time(),
            "provider": provider,
            "model": model,
            "path": path,
            "status": None,
            "mode": "ok",
        }
        self._entries.append(entry)
        return entry

    def entries(self, provider: str | None = None, model: str | None = None) -> list[dict[str, Any]]:
        return [
            dict(e)
            for e in self._entries
            if (provider is None or e["provider"] == provider) and (model is None or e["model"] == model)
        ]

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class EmulatorState:
    """All mutable state of one emulator app."""

    faults: FaultBook = field(default_factory=FaultBook)
    requests: RequestLog = field(default_factory=RequestLog)
    status: StatusBoard = field(default_factory=StatusBoard)
