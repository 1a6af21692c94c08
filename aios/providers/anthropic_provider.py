"""Anthropic through the official SDK's Messages API, with structured output from the contract."""

from __future__ import annotations

from typing import Any

import anthropic
from pydantic import BaseModel, ConfigDict, ValidationError

from aios.core.failures import FailureKind, ProviderFailure
from aios.core.fallback import Reply, Usage
from aios.core.policy import Target, Timeouts
from aios.providers.base import ClientCache, ModelRequest, response_began, user_turns
from aios.providers.translate import call_sdk, not_an_answer
from aios.config.settings import Endpoint


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
        message = await call_sdk(client.messages.create(**kwargs), key=self.endpoint.api_key())
        try:
            seen = _Message.model_validate(message)
        except ValidationError as exc:
            raise not_an_answer("Message", message, exc) from None
        return Reply(
            content=_content(seen),
            response_model=seen.model,
            response_id=seen.id,
            usage=Usage(input_tokens=seen.usage.input_tokens, output_tokens=seen.usage.output_tokens),
            finish_reason=seen.stop_reason,
        )


class _Seen(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _Block(_Seen):
    type: str
    text: str | None = None
    input: Any = None


class _Usage(_Seen):
    input_tokens: int = 0
    output_tokens: int = 0


class _Message(_Seen):
    """The fields of the SDK's `Message` we read, checked: the SDK builds its models without validating them."""

    id: str
    model: str
    content: list[_Block]
    stop_reason: str | None = None
    usage: _Usage


_CUT_OFF = {"max_tokens", "model_context_window_exceeded"}


def _content(message: _Message) -> object:
    if message.stop_reason == "refusal":
        raise ProviderFailure("the model refused to answer (stop_reason=refusal)", kind=FailureKind.invalid_answer)
    if message.stop_reason in _CUT_OFF:
        raise ProviderFailure(
            f"answer cut off before it was complete (stop_reason={message.stop_reason})", kind=FailureKind.invalid_answer
        )
    for block in message.content:
        if block.type == "tool_use":
            return block.input
    text = "".join(block.text or "" for block in message.content if block.type == "text")
    if not text:
        raise ProviderFailure(f"empty answer (stop_reason={message.stop_reason})", kind=FailureKind.invalid_answer)
    return text


def _build(api_key: str, base_url: str | None, timeouts: Timeouts) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,  # the fallback policy retries, not the SDK
        timeout=anthropic.Timeout(timeouts.read, connect=timeouts.connect),
        http_client=anthropic.DefaultAsyncHttpxClient(
            timeout=anthropic.Timeout(timeouts.read, connect=timeouts.connect),
            event_hooks={"response": [response_began]},  # a hedged primary that began answering is alive
        ),
    )
