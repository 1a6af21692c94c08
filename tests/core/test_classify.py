"""The failure table: what every kind of failure makes the fallback loop do."""

import pytest

from aios.core.errors import Action, ErrorClass, FailureKind, ProviderFailure, classify


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
