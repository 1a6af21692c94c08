"""Anthropic through the official SDK's Messages API, with structured output from the contract."""

from __future__ import annotations

import anthropic

from aios.core.errors import FailureKind, ProviderFailure
from aios.core.fallback import Reply, Usage
from aios.core.policy import Target, Timeouts
from aios.providers.base import ClientCache, ModelRequest, user_turns
from aios.providers.translate import translate
from aios.settings import Endpoint


class AnthropicProvider:
    """`output="json_schema"` sends `output_config.format`; `output="tool"` forces a tool whose input is the answer."""

    def __init__(self, endpoint: Endpoint, output: str = "json_schema") -> None:
        self.endpoint = endpoint
        self.output = output
        self.clients = ClientCache(endpoint, _build)

    async def complete(self, target: Target, request: ModelRequest, feedback: str | None, timeouts: Timeouts) -> Reply:
        client = self.clients.get(timeouts)
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


def _build(api_key: str, base_url: str | None, timeouts: Timeouts) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,  # the fallback policy retries, not the SDK
        timeout=anthropic.Timeout(timeouts.read, connect=timeouts.connect),
    )
