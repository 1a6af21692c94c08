"""The failure table: what every kind of failure makes the fallback loop do, and how long a 429 asks to wait."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from aios.core.failures import Action, ErrorClass, FailureKind, ProviderFailure, classify
from aios.core.retry_after import parse_retry_after, retry_after_from_headers


def status(code, message="boom", error_type=None, retry_after=None):
    return ProviderFailure(message, kind=FailureKind.status, status=code, error_type=error_type, retry_after=retry_after)


TABLE = [
    # failure                                                        error class                 action                 misconfigured unhealthy
    (status(529, error_type="overloaded_error"),                     ErrorClass.overloaded,      Action.failover,       False, True),
    (status(500),                                                    ErrorClass.server_error,    Action.failover,       False, True),
    (status(502),                                                    ErrorClass.server_error,    Action.failover,       False, True),
    (status(503),                                                    ErrorClass.server_error,    Action.failover,       False, True),
    (status(504),                                                    ErrorClass.server_error,    Action.failover,       False, True),
    (ProviderFailure("x", kind=FailureKind.connect_refused),         ErrorClass.unreachable,     Action.failover,       False, True),
    (ProviderFailure("x", kind=FailureKind.dns),                     ErrorClass.unreachable,     Action.failover,       False, True),
    (ProviderFailure("x", kind=FailureKind.connect_timeout),         ErrorClass.timeout,         Action.failover,       False, True),
    (ProviderFailure("x", kind=FailureKind.read_timeout),            ErrorClass.timeout,         Action.failover,       False, True),
    (ProviderFailure("x", kind=FailureKind.stream_cut),              ErrorClass.stream_cut,      Action.failover,       False, True),
    (ProviderFailure("x", kind=FailureKind.malformed_response),      ErrorClass.malformed_response, Action.failover,    False, True),
    (status(429, retry_after=1.0),                                   ErrorClass.rate_limited,    Action.wait_and_retry, False, False),
    (status(429, retry_after=30.0),                                  ErrorClass.rate_limited,    Action.failover,       False, True),
    (status(429),                                                    ErrorClass.rate_limited,    Action.failover,       False, True),
    (status(401, error_type="authentication_error"),                 ErrorClass.auth,            Action.failover,       True,  True),
    (status(403, error_type="permission_error"),                     ErrorClass.auth,            Action.failover,       True,  True),
    (status(404, error_type="not_found_error"),                      ErrorClass.not_found,       Action.failover,       True,  False),
    (status(400, error_type="invalid_request_error"),                ErrorClass.bad_request,     Action.fail_fast,      False, False),
    (status(422),                                                    ErrorClass.bad_request,     Action.fail_fast,      False, False),
    (status(400, "prompt is too long: 250000 tokens > 200000 maximum"), ErrorClass.context_length, Action.failover,   False, False),
    (status(400, "This model's maximum context length is 128000 tokens", "context_length_exceeded"), ErrorClass.context_length, Action.failover, False, False),
    (status(413, error_type="request_too_large"),                    ErrorClass.context_length,  Action.failover,       False, False),
    (ProviderFailure("x", kind=FailureKind.invalid_answer),          ErrorClass.invalid_answer,  Action.reask,          False, False),
    (ProviderFailure("x", kind=FailureKind.missing_key),             ErrorClass.missing_key,     Action.failover,       True,  False),
]


@pytest.mark.parametrize(("failure", "error_class", "action", "misconfigured", "unhealthy"), TABLE, ids=lambda v: str(v)[:40])
def test_failure_table(failure, error_class, action, misconfigured, unhealthy):
    verdict = classify(failure, max_retry_after=2.0)
    assert (verdict.error_class, verdict.action, verdict.misconfigured, verdict.unhealthy) == (
        error_class, action, misconfigured, unhealthy,
    )


def test_short_retry_after_is_waited_out_for_exactly_its_length():
    assert classify(status(429, retry_after=1.5), max_retry_after=2.0).wait == 1.5


def test_retry_after_bound_comes_from_the_policy():
    assert classify(status(429, retry_after=1.5), max_retry_after=1.0).action is Action.failover


# ---------------------------------------------------------------- Retry-After parsing
NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("-4", 0.0),  # nonsense in the past: retry now
        (format_datetime(NOW + timedelta(seconds=4), usegmt=True), 4.0),  # an HTTP date a few seconds ahead
        ("Mon, 02 Mar 2026 11:59:00 GMT", 0.0),  # a date already past
        ("Mon, 02 Mar 2026 12:00:30 -0000", 30.0),  # "-0000": no zone given, read as GMT
        ("soon", None),
        ("", None),
        (None, None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_retry_after_is_delta_seconds_or_an_http_date(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


def test_retry_after_ms_wins_over_retry_after_and_names_are_case_insensitive():
    assert retry_after_from_headers({"Retry-After-Ms": "1500", "Retry-After": "9"}, now=NOW) == 1.5
    assert retry_after_from_headers({"retry-after-ms": "soon", "retry-after": "9"}, now=NOW) == 9.0
    assert retry_after_from_headers({}, now=NOW) is None


def test_an_http_date_a_few_seconds_ahead_is_a_short_wait_a_late_one_fails_over():
    soon = parse_retry_after(format_datetime(NOW + timedelta(seconds=2), usegmt=True), now=NOW)
    late = parse_retry_after(format_datetime(NOW + timedelta(minutes=5), usegmt=True), now=NOW)
    assert classify(status(429, retry_after=soon), max_retry_after=2.0).action is Action.wait_and_retry
    assert classify(status(429, retry_after=late), max_retry_after=2.0).action is Action.failover
