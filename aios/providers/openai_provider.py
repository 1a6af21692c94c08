"""OpenAI, or any OpenAI-compatible endpoint, through the official SDK (Chat Completions or Responses)."""

from __future__ import annotations

import openai
from pydantic import BaseModel, ConfigDict, ValidationError

from aios.core.contract import is_strict_compatible
from aios.core.failures import FailureKind, ProviderFailure
from aios.core.fallback import Reply, Usage
from aios.core.policy import Target, Timeouts
from aios.providers.base import ClientCache, ModelRequest, response_began, user_turns
from aios.providers.translate import call_sdk, not_an_answer
from aios.config.settings import Endpoint


class OpenAIProvider:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.clients = ClientCache(endpoint, _build)

    async def complete(self, target: Target, request: ModelRequest, feedback: str | None, timeouts: Timeouts) -> Reply:
        client = self.clients.get(timeouts)
        if self.endpoint.api == "responses":
            return await self._responses(client, target, request, feedback)
        return await self._chat(client, target, request, feedback)

    async def _chat(self, client: openai.AsyncOpenAI, target: Target, request: ModelRequest, feedback: str | None) -> Reply:
        completion = await call_sdk(
            client.chat.completions.create(
                model=target.model,
                max_completion_tokens=request.max_tokens,
                messages=[{"role": "system", "content": request.system}, *user_turns(request, feedback)],
                response_format={
                    "type": "json_schema",
                    "json_schema": {
                        "name": request.schema_name,
                        "schema": request.output_schema,
                        "strict": is_strict_compatible(request.output_schema),
                    },
                },
            ),
            key=self.endpoint.api_key(),
        )
        try:
            seen = _Completion.model_validate(completion)
        except ValidationError as exc:
            raise not_an_answer("ChatCompletion", completion, exc) from None
        if not seen.choices:
            raise ProviderFailure("answer has no choices", kind=FailureKind.invalid_answer)
        choice = seen.choices[0]
        if choice.message.refusal:
            raise ProviderFailure(f"the model refused to answer: {choice.message.refusal}", kind=FailureKind.invalid_answer)
        if choice.finish_reason == "length":
            raise ProviderFailure("answer cut off before it was complete (finish_reason=length)", kind=FailureKind.invalid_answer)
        if not choice.message.content:
            raise ProviderFailure(f"empty answer (finish_reason={choice.finish_reason})", kind=FailureKind.invalid_answer)
        usage = seen.usage
        return Reply(
            content=choice.message.content,
            response_model=seen.model,
            response_id=seen.id,
            usage=Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens) if usage else Usage(),
            finish_reason=choice.finish_reason,
        )

    async def _responses(self, client: openai.AsyncOpenAI, target: Target, request: ModelRequest, feedback: str | None) -> Reply:
        response = await call_sdk(
            client.responses.create(
                model=target.model,
                instructions=request.system,
                input=user_turns(request, feedback),
                max_output_tokens=request.max_tokens,
                text={
                    "format": {
                        "type": "json_schema",
                        "name": request.schema_name,
                        "schema": request.output_schema,
                        "strict": is_strict_compatible(request.output_schema),
                    }
                },
            ),
            key=self.endpoint.api_key(),
        )
        try:
            seen = _Response.model_validate(response)
        except ValidationError as exc:
            raise not_an_answer("Response", response, exc) from None
        parts = [part for item in seen.output if item.type == "message" for part in item.content or []]
        refusals = [part.refusal for part in parts if part.type == "refusal"]
        if refusals:
            raise ProviderFailure(f"the model refused to answer: {refusals[0]}", kind=FailureKind.invalid_answer)
        if seen.status == "incomplete":
            reason = seen.incomplete_details.reason if seen.incomplete_details else None
            raise ProviderFailure(f"answer cut off before it was complete (incomplete: {reason})", kind=FailureKind.invalid_answer)
        text = "".join(part.text or "" for part in parts if part.type == "output_text")
        if not text:
            raise ProviderFailure(f"empty answer (status={seen.status})", kind=FailureKind.invalid_answer)
        usage = seen.usage
        return Reply(
            content=text,
            response_model=seen.model,
            response_id=seen.id,
            usage=Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens) if usage else Usage(),
            finish_reason=seen.status,
        )


class _Seen(BaseModel):
    """The fields of an SDK answer we read, checked: the SDK builds its models without validating them."""

    model_config = ConfigDict(from_attributes=True)


class _ChatMessage(_Seen):
    content: str | None = None
    refusal: str | None = None


class _Choice(_Seen):
    message: _ChatMessage
    finish_reason: str | None = None


class _ChatUsage(_Seen):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Completion(_Seen):
    id: str
    model: str
    choices: list[_Choice]
    usage: _ChatUsage | None = None


class _Part(_Seen):
    type: str
    text: str | None = None
    refusal: str | None = None


class _Item(_Seen):
    type: str
    content: list[_Part] | None = None


class _Incomplete(_Seen):
    reason: str | None = None


class _ResponsesUsage(_Seen):
    input_tokens: int = 0
    output_tokens: int = 0


class _Response(_Seen):
    id: str
    model: str
    status: str | None = None
    output: list[_Item]
    incomplete_details: _Incomplete | None = None
    usage: _ResponsesUsage | None = None


def _build(api_key: str, base_url: str | None, timeouts: Timeouts) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,  # the fallback policy retries, not the SDK
        timeout=openai.Timeout(timeouts.read, connect=timeouts.connect),
        http_client=openai.DefaultAsyncHttpxClient(
            timeout=openai.Timeout(timeouts.read, connect=timeouts.connect),
            event_hooks={"response": [response_began]},  # a hedged primary that began answering is alive
        ),
    )
