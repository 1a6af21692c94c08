"""The line between a provider's fault and our own bug: only the first is failed over."""

from __future__ import annotations

import anthropic
import pytest

from aios.core.failures import FailureKind, ProviderFailure
from aios.emulators.server import EmulatorHandle
from aios.providers.translate import call_sdk, translate


async def test_a_wrong_sdk_argument_is_our_bug_and_is_not_failed_over(emulator: EmulatorHandle) -> None:
    client = anthropic.AsyncAnthropic(api_key="k", base_url=emulator.anthropic_base_url, max_retries=0)
    with pytest.raises(TypeError, match="no_such_argument"):
        await call_sdk(client.messages.create(model="claude-opus-4-5", max_tokens=8, messages=[], no_such_argument=1))
    await client.close()


async def test_a_truncated_200_body_is_a_provider_failure(emulator: EmulatorHandle) -> None:
    emulator.control.set_fault("anthropic", "malformed_json")
    client = anthropic.AsyncAnthropic(api_key="k", base_url=emulator.anthropic_base_url, max_retries=0)
    with pytest.raises(ProviderFailure) as info:
        await call_sdk(client.messages.create(model="claude-opus-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}]))
    assert info.value.kind is FailureKind.malformed_response
    await client.close()


@pytest.mark.parametrize("bug", [KeyError("x"), AttributeError("x"), TypeError("x"), RuntimeError("x")])
def test_errors_of_our_own_code_are_not_translated(bug: Exception) -> None:
    assert translate(bug) is None


async def test_a_key_the_upstream_echoes_back_is_cut_out_of_the_failure(emulator: EmulatorHandle, monkeypatch) -> None:
    from aios.core.policy import Target, Timeouts
    from aios.observability.redaction import REDACTED
    from aios.providers.base import ModelRequest
    from aios.providers.openai_provider import OpenAIProvider
    from aios.config.settings import Endpoint

    key = "sk-echo-canary-0123456789"
    monkeypatch.setenv("AIOS_ECHO_TEST_KEY", key)
    emulator.control.set_fault("openai", "echo_key")
    adapter = OpenAIProvider(Endpoint(name="o", kind="openai", api_key_env="AIOS_ECHO_TEST_KEY", base_url=emulator.openai_base_url))
    request = ModelRequest(system="s", prompt="p", schema_name="x", output_schema={"type": "object"})
    with pytest.raises(ProviderFailure) as info:
        await adapter.complete(Target(provider="o", model="gpt-5"), request, None, Timeouts())
    assert info.value.message == f"upstream rejected the request made with key {REDACTED}"
    assert key not in str(info.value) and key not in repr(info.value.args)
