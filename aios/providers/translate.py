"""Turn an SDK exception (anthropic or openai: both are built the same way) into a ProviderFailure.

The line between "the provider's fault" and "our bug": anything the wire can do to a call (an
error status, a timeout, a dropped or garbled connection, a body that is not the API's JSON)
becomes a `ProviderFailure` the fallback loop acts on; anything else propagates, so our own
bugs surface instead of being failed over.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable
from typing import TypeVar

import anthropic
import httpx2
import openai
import pydantic

from aios.core.failures import FailureKind, ProviderFailure
from aios.core.retry_after import retry_after_from_headers
from aios.observability.redaction import REDACTED

_STATUS = (anthropic.APIStatusError, openai.APIStatusError)
_TIMEOUT = (anthropic.APITimeoutError, openai.APITimeoutError)
_CONNECTION = (anthropic.APIConnectionError, openai.APIConnectionError)
# A body the SDK could not read as the API's answer: truncated or non-UTF-8 JSON, a bad
# content-encoding, or JSON the SDK's own (strict) validation rejected.
_MALFORMED = (
    anthropic.APIResponseValidationError,
    openai.APIResponseValidationError,
    json.JSONDecodeError,
    UnicodeDecodeError,
    httpx2.DecodingError,
)

T = TypeVar("T")


async def call_sdk(request: Awaitable[T], *, key: str | None = None) -> T:
    """Await one SDK call: a provider's fault is raised as a ProviderFailure, anything else as itself.

    `key` (the call's API key) is cut out of the failure's message: an upstream that echoes it back
    must not put it into attempts, spans or exception text.
    """
    try:
        return await request
    except Exception as exc:
        failure = translate(exc)
        if failure is None:
            raise
        if key and key in failure.message:
            failure.message = failure.message.replace(key, REDACTED)
            failure.args = (failure.message,)
        raise failure from None


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
            retry_after=retry_after_from_headers(headers),
            request_id=headers.get("request-id") or headers.get("x-request-id"),
        )
    if isinstance(exc, _TIMEOUT):
        connect = isinstance(exc.__cause__, (httpx2.ConnectTimeout, httpx2.PoolTimeout))
        kind = FailureKind.connect_timeout if connect else FailureKind.read_timeout
        return ProviderFailure("connect timed out" if connect else "read timed out", kind=kind)
    if isinstance(exc, _CONNECTION):
        return _connection_failure(exc.__cause__)
    if isinstance(exc, httpx2.RemoteProtocolError):
        return _closed(exc)
    if isinstance(exc, _MALFORMED):
        return malformed(type(exc).__name__)
    return None


def malformed(detail: str) -> ProviderFailure:
    return ProviderFailure(f"the API's answer could not be parsed: {detail}", kind=FailureKind.malformed_response)


def not_an_answer(what: str, obj: object, error: pydantic.ValidationError) -> ProviderFailure:
    """An HTTP 200 whose body the SDK turned into something that is not `what` (the SDKs do not validate)."""
    if isinstance(obj, str):  # the SDKs hand back the text of a body that is not JSON
        return malformed(f"the body is not JSON, so not a {what}")
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(root)"
    return malformed(f"a {type(obj).__name__} that is not a {what} ({where}: {first['msg']})")


def _error_fields(body: object) -> tuple[str | None, str | None]:
    """(type, message) from either provider's error body."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            kind = inner.get("code") or inner.get("type")
            return (str(kind) if kind else None), (str(inner["message"]) if inner.get("message") else None)
    return None, None


def _closed(cause: BaseException) -> ProviderFailure:
    """A connection the other end closed: before any answer the target is unreachable (nothing was
    answered, as with a refused connection); after the headers the answer was cut."""
    if "without sending a response" in str(cause):  # httpcore's words for EOF before a status line
        return ProviderFailure("connection closed without an answer", kind=FailureKind.connect_refused)
    return ProviderFailure("connection closed mid-answer", kind=FailureKind.stream_cut)


def _connection_failure(cause: BaseException | None) -> ProviderFailure:
    if isinstance(cause, httpx2.DecodingError):
        return malformed(type(cause).__name__)
    if isinstance(cause, (httpx2.RemoteProtocolError, httpx2.ReadError)):
        return _closed(cause)
    text = str(cause or "")
    chain = cause
    while chain is not None:
        if isinstance(chain, socket.gaierror):
            return ProviderFailure(f"DNS lookup failed: {text}", kind=FailureKind.dns)
        chain = chain.__cause__ or chain.__context__
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return ProviderFailure(f"DNS lookup failed: {text}", kind=FailureKind.dns)
    return ProviderFailure(f"connection failed: {text or type(cause).__name__}", kind=FailureKind.connect_refused)
