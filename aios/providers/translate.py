"""Turn an SDK exception (anthropic or openai: both are built the same way) into a ProviderFailure."""

from __future__ import annotations

import json
import socket

import anthropic
import httpx2
import openai

from aios.core.errors import FailureKind, ProviderFailure

_STATUS = (anthropic.APIStatusError, openai.APIStatusError)
_TIMEOUT = (anthropic.APITimeoutError, openai.APITimeoutError)
_CONNECTION = (anthropic.APIConnectionError, openai.APIConnectionError)
_VALIDATION = (anthropic.APIResponseValidationError, openai.APIResponseValidationError)


def retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds form only; dates are not short waits)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return float(value) * scale
            except ValueError:
                return None
    return None


def _error_fields(body: object) -> tuple[str | None, str | None]:
    """(type, message) from either provider's error body."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            kind = inner.get("code") or inner.get("type")
            return (str(kind) if kind else None), (str(inner["message"]) if inner.get("message") else None)
    return None, None


def translate(exc: BaseException) -> ProviderFailure | None:
    """A ProviderFailure for a call error, or None when the exception is not a call error (a bug)."""
    if isinstance(exc, _STATUS):
        error_type, message = _error_fields(exc.body)
        headers = exc.response.headers
        return ProviderFailure(
            message or f"HTTP {exc.status_code}",
            kind=FailureKind.status,
            status=exc.status_code,
            error_type=error_type,
            retry_after=retry_after(headers),
            request_id=headers.get("request-id") or headers.get("x-request-id"),
        )
    if isinstance(exc, _TIMEOUT):
        connect = isinstance(exc.__cause__, (httpx2.ConnectTimeout, httpx2.PoolTimeout))
        kind = FailureKind.connect_timeout if connect else FailureKind.read_timeout
        return ProviderFailure("connect timed out" if connect else "read timed out", kind=kind)
    if isinstance(exc, _CONNECTION):
        return _connection_failure(exc.__cause__)
    if isinstance(exc, _VALIDATION | (json.JSONDecodeError,)):
        return ProviderFailure(f"the API's answer could not be parsed: {type(exc).__name__}", kind=FailureKind.malformed_response)
    return None


def _connection_failure(cause: BaseException | None) -> ProviderFailure:
    if isinstance(cause, (httpx2.RemoteProtocolError, httpx2.ReadError)):
        return ProviderFailure("connection closed mid-answer", kind=FailureKind.stream_cut)
    text = str(cause or "")
    chain = cause
    while chain is not None:
        if isinstance(chain, socket.gaierror):
            return ProviderFailure(f"DNS lookup failed: {text}", kind=FailureKind.dns)
        chain = chain.__cause__ or chain.__context__
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return ProviderFailure(f"DNS lookup failed: {text}", kind=FailureKind.dns)
    return ProviderFailure(f"connection failed: {text or type(cause).__name__}", kind=FailureKind.connect_refused)
