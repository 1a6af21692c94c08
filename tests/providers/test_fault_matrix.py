"""Every provider fault, through the real SDKs and the real adapters, into the real fallback loop.

One table: each adapter (Anthropic `json_schema`, Anthropic `tool`, OpenAI Chat Completions, OpenAI
Responses) meets each fault on the wire, once (`times=1`), as the first target of a two-target chain
whose second target (the other provider, healthy) is the way out. Each case checks how the failure is
classified, what the chain does next (fail over, wait and ask again, re-ask, fail fast, mark the target
misconfigured), and that nothing but the chain's own result or `ChainAborted` comes out of it.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

import pytest

from aios.core.breaker import BreakerBoard
from aios.core.contract import contract_validator
from aios.core.failures import Action, ErrorClass
from aios.core.fallback import Attempt, ChainAborted, Outcome, run_chain
from aios.core.policy import FallbackPolicy, Target, Timeouts
from aios.emulators.blackhole import BlackHole
from aios.emulators.control import EmulatorControl
from aios.emulators.server import EmulatorHandle, free_port
from aios.providers.anthropic_provider import AnthropicProvider
from aios.providers.base import ModelRequest, Provider
from aios.providers.openai_provider import OpenAIProvider
from aios.config.settings import Endpoint

KEY_ENV, UNSET_KEY_ENV = "AIOS_MATRIX_KEY", "AIOS_MATRIX_UNSET_KEY"
UNDER_TEST, BACKUP = "under-test", "backup"
MODELS = {"anthropic": "claude-opus-4-5", "openai": "gpt-5"}
BACKUP_MODELS = {"anthropic": "gpt-5-mini", "openai": "claude-haiku-4-5"}  # the other provider
TIMEOUTS = Timeouts(connect=0.5, read=1.0)  # short, so the black hole and the hang cost little
MAX_RETRY_AFTER = 2.0

SCHEMA = {
    "type": "object",
    "properties": {"company": {"type": "string"}, "fit": {"enum": ["good", "poor"]}},
    "required": ["company", "fit"],
    "additionalProperties": False,
}
REQUEST = ModelRequest(system="You research sales leads.", prompt="Research Acme Corp", schema_name="lead", output_schema=SCHEMA)

ADAPTERS: dict[str, tuple[str, str]] = {  # id -> (provider, output or api)
    "anthropic-json_schema": ("anthropic", "json_schema"),
    "anthropic-tool": ("anthropic", "tool"),
    "openai-chat": ("openai", "chat"),
    "openai-responses": ("openai", "responses"),
}

Next = Literal["failover", "same_target", "aborted"]


@dataclass(frozen=True)
class Fault:
    """One fault and what the chain must make of it."""

    error_class: ErrorClass | dict[str, ErrorClass]  # per provider where they differ
    action: Action
    then: Next
    mode: str | None = None  # an emulator fault mode; None: the endpoint itself is broken (`where`)
    where: Literal["emulator", "closed_port", "dns", "black_hole", "no_key"] = "emulator"
    rule: dict = field(default_factory=dict)  # extra fault-rule parameters
    misconfigured: bool = False
    wait: tuple[float, float] | None = None  # (low, high] seconds the chain waits before asking again


FAILOVER = Action.failover
FAULTS: dict[str, Fault] = {
    "529 overloaded": Fault(
        {"anthropic": ErrorClass.overloaded, "openai": ErrorClass.server_error},  # OpenAI says 503 "overloaded"
        FAILOVER, "failover", "overloaded"),
    "500": Fault(ErrorClass.server_error, FAILOVER, "failover", "error_500"),
    "502 with an HTML body": Fault(ErrorClass.server_error, FAILOVER, "failover", "error_502"),
    "503": Fault(ErrorClass.server_error, FAILOVER, "failover", "unavailable"),
    "504": Fault(ErrorClass.server_error, FAILOVER, "failover", "gateway_timeout"),
    "429 retry-after seconds": Fault(ErrorClass.rate_limited, Action.wait_and_retry, "same_target", "rate_limited",
                                     rule={"retry_after": 1, "retry_header": "seconds"}, wait=(0.99, 1.0)),
    "429 retry-after-ms": Fault(ErrorClass.rate_limited, Action.wait_and_retry, "same_target", "rate_limited",
                                rule={"retry_after": 1.5, "retry_header": "ms"}, wait=(1.49, 1.5)),
    "429 retry-after HTTP date": Fault(ErrorClass.rate_limited, Action.wait_and_retry, "same_target", "rate_limited",
                                       rule={"retry_after": 2, "retry_header": "date"}, wait=(0.0, 2.0)),
    "429 above the wait bound": Fault(ErrorClass.rate_limited, FAILOVER, "failover", "rate_limited",
                                      rule={"retry_after": 30}),
    "400": Fault(ErrorClass.bad_request, Action.fail_fast, "aborted", "bad_request"),
    "400 context length": Fault(ErrorClass.context_length, FAILOVER, "failover", "context_length"),
    "401": Fault(ErrorClass.auth, FAILOVER, "failover", "unauthorized", misconfigured=True),
    "403": Fault(ErrorClass.auth, FAILOVER, "failover", "forbidden", misconfigured=True),
    "404 unknown model": Fault(ErrorClass.not_found, FAILOVER, "failover", "not_found", misconfigured=True),
    "no API key": Fault(ErrorClass.missing_key, FAILOVER, "failover", where="no_key", misconfigured=True),
    "connection refused": Fault(ErrorClass.unreachable, FAILOVER, "failover", where="closed_port"),
    "DNS failure": Fault(ErrorClass.unreachable, FAILOVER, "failover", where="dns"),
    "connect black hole": Fault(ErrorClass.timeout, FAILOVER, "failover", where="black_hole"),
    "read timeout": Fault(ErrorClass.timeout, FAILOVER, "failover", "hang"),
    "connection closed without an answer": Fault(ErrorClass.unreachable, FAILOVER, "failover", "refused"),
    "body cut mid-way": Fault(ErrorClass.stream_cut, FAILOVER, "failover", "cut"),
    "200 with truncated JSON": Fault(ErrorClass.malformed_response, FAILOVER, "failover", "malformed_json"),
    "200 with JSON cut mid-value": Fault(ErrorClass.malformed_response, FAILOVER, "failover", "truncated_json"),
    "200 with an empty body": Fault(ErrorClass.malformed_response, FAILOVER, "failover", "empty_body"),
    "200 with a non-JSON content type": Fault(ErrorClass.malformed_response, FAILOVER, "failover", "not_json"),
    "refusal": Fault(ErrorClass.invalid_answer, Action.reask, "same_target", "refusal"),
    "empty content": Fault(ErrorClass.invalid_answer, Action.reask, "same_target", "empty_content"),
    "max_tokens cut-off": Fault(ErrorClass.invalid_answer, Action.reask, "same_target", "max_tokens"),
    "answer breaks the contract": Fault(ErrorClass.invalid_answer, Action.reask, "same_target", "schema_invalid"),
}


@cache  # one adapter (and SDK client) per endpoint for the whole module, as in a running aios
def adapter(adapter_id: str, base_url: str, key_env: str = KEY_ENV) -> Provider:
    provider, flavour = ADAPTERS[adapter_id]
    if provider == "anthropic":
        return AnthropicProvider(Endpoint(name=UNDER_TEST, kind="anthropic", api_key_env=key_env, base_url=base_url), output=flavour)
    return OpenAIProvider(Endpoint(name=UNDER_TEST, kind="openai", api_key_env=key_env, base_url=base_url, api=flavour))


def base_url(emulator: EmulatorHandle, provider: str) -> str:
    return emulator.anthropic_base_url if provider == "anthropic" else emulator.openai_base_url


@dataclass
class ChainRun:
    attempts: list[Attempt]
    misconfigured: list[str]
    answered_by: str | None
    waits: list[float]


async def run_two_target_chain(first: Provider, second: Provider, provider: str) -> ChainRun:
    """The real loop over [adapter under test, healthy backup]; returns what it did."""
    targets = (
        Target(provider=UNDER_TEST, model=MODELS[provider], context_window=200_000),
        Target(provider=BACKUP, model=BACKUP_MODELS[provider], context_window=400_000),
    )
    adapters = {UNDER_TEST: first, BACKUP: second}
    policy = FallbackPolicy(targets=targets, primary_provider=UNDER_TEST, timeouts=TIMEOUTS, max_retry_after=MAX_RETRY_AFTER)
    waits: list[float] = []

    async def call(target: Target, feedback: str | None):
        return await adapters[target.provider].complete(target, REQUEST, feedback, TIMEOUTS)

    async def sleep(seconds: float) -> None:  # the wait the chain decided on, without spending it
        waits.append(seconds)

    try:
        result = await run_chain(policy, call, contract_validator(SCHEMA), BreakerBoard(), sleep=sleep)
    except ChainAborted as aborted:  # the only failure a healthy backup leaves possible
        return ChainRun(aborted.attempts, aborted.misconfigured, None, waits)
    return ChainRun(result.attempts, result.misconfigured, result.answer.provider, waits)


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-matrix-test")
    monkeypatch.delenv(UNSET_KEY_ENV, raising=False)


@pytest.mark.parametrize("fault_id", FAULTS)
@pytest.mark.parametrize("adapter_id", ADAPTERS)
async def test_fault_is_classified_and_the_chain_does_the_right_next_thing(
    adapter_id: str, fault_id: str, emulator: EmulatorHandle, control: EmulatorControl, key: None
) -> None:
    fault = FAULTS[fault_id]
    provider = ADAPTERS[adapter_id][0]
    other = "openai" if provider == "anthropic" else "anthropic"
    with ExitStack() as stack:
        url, key_env = base_url(emulator, provider), KEY_ENV
        if fault.where == "closed_port":
            url = f"http://127.0.0.1:{free_port()}"
        elif fault.where == "dns":
            url = "http://aios-fault-matrix.invalid"
        elif fault.where == "black_hole":
            url = stack.enter_context(BlackHole()).url
        elif fault.where == "no_key":
            key_env = UNSET_KEY_ENV
        if fault.mode:
            control.set_fault(provider, fault.mode, model=MODELS[provider], times=1, **fault.rule)
        backup = adapter("anthropic-json_schema" if other == "anthropic" else "openai-chat", base_url(emulator, other))
        run = await run_two_target_chain(adapter(adapter_id, url, key_env), backup, provider)

    expected_class = fault.error_class[provider] if isinstance(fault.error_class, dict) else fault.error_class
    first = run.attempts[0]
    assert (first.provider, first.outcome, first.error_class, first.action) == (
        UNDER_TEST, Outcome.failed, expected_class, fault.action
    ), first.message
    assert run.misconfigured == ([f"{UNDER_TEST}:{MODELS[provider]}"] if fault.misconfigured else [])
    tried = [(a.provider, a.outcome) for a in run.attempts]
    backup_calls = control.requests(provider=other, model=BACKUP_MODELS[provider])
    if fault.then == "failover":
        assert run.answered_by == BACKUP and tried == [(UNDER_TEST, Outcome.failed), (BACKUP, Outcome.ok)]
    elif fault.then == "same_target":
        assert run.answered_by == UNDER_TEST and tried == [(UNDER_TEST, Outcome.failed), (UNDER_TEST, Outcome.ok)]
        assert backup_calls == [], "the backup was never asked"
    else:
        assert run.answered_by is None and tried == [(UNDER_TEST, Outcome.failed)]
        assert backup_calls == [], "a bad request is ours: nobody else is asked"
    if fault.wait:
        low, high = fault.wait
        assert len(run.waits) == 1 and low < run.waits[0] <= high
    else:
        assert run.waits == []
