"""Anthropic through the official SDK's Messages API, with structured output from the contract."""

from __future__ import annotations

import json

import anthropic

from aios.core.errors import FailureKind, ProviderFailure
from aios.core.fallback import Reply, Usage
from aios.core.policy import Target, Timeouts
from aios.providers.base import ModelRequest, user_turns
from aios.providers.translate import translate
from aios.settings import Endpoint


class AnthropicProvider:
    """`output="json_schema"` sends `output_config.format`; `output="tool"` forces a tool whose input is the answer."""

    def __init__(self, endpoint: Endpoint, output: str = "json_schema") -> None:
        self.endpoint = endpoint
        self.output = output
        self._clients: dict[tuple, anthropic.AsyncAnthropic] = {}

    def client(self, timeouts: Timeouts) -> anthropic.AsyncAnthropic:
        key = self.endpoint.api_key()
        if not key:
            raise ProviderFailure(f"{self.endpoint.api_key_env} is not set", kind=FailureKind.missing_key)
        base_url = self.endpoint.resolved_base_url()
        cache_key = (key, base_url, timeouts)
        client = self._clients.get(cache_key)
        if client is None:
            client = anthropic.AsyncAnthropic(
                api_key=key,
                base_url=base_url,
                max_retries=0,  # the fallback policy retries, not the SDK
                timeout=anthropic.Timeout(timeouts.read, connect=timeouts.connect),
            )
            self._clients[cache_key] = client
        return client

    async def complete(self, target: Target, request: ModelRequest, feedback: str | None, timeouts: Timeouts) -> Reply:
        client = self.client(timeouts)
        kwargs: dict = {
            "model": target.model,
            "max_tokens": request.max_tokens,
            "system": request.system,
            "messages": user_turns(request, feedback),
        }
        if self.output == "tool":
            kwargs["tools"] = [{"name": request.schema_name, "description": "Return the answer.", "input_schema": request.output_schema}]
            kwargs["tool_choice"] = {"type": "tool", "name": request.schema_name}
        else:
            kwargs["output_config"] = {"format": {"type": "json_schema", "schema": request.output_schema}}
        try:
            message = await client.messages.create(**kwargs)
        except Exception as exc:
            failure = translate(exc)
            if failure is None:
                raise
            raise failure from None
        return Reply(
            content=_content(message),
            response_model=message.model,
            response_id=message.id,
            usage=Usage(input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens),
            finish_reason=message.stop_reason,
        )


def _content(message: anthropic.types.Message) -> object:
    for block in message.content:
        if block.type == "tool_use":
            return block.input
    text = "".join(block.text for block in message.content if block.type == "text")
    if not text:
        raise ProviderFailure(
            f"empty answer (stop_reason={message.stop_reason})", kind=FailureKind.invalid_answer
        )
    return text


def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
