"""OpenAI, or any OpenAI-compatible endpoint, through the official SDK (Chat Completions or Responses)."""

from __future__ import annotations

import openai

from aios.core.contract import is_strict_compatible
from aios.core.errors import FailureKind, ProviderFailure
from aios.core.fallback import Reply, Usage
from aios.core.policy import Target, Timeouts
from aios.providers.base import ClientCache, ModelRequest, user_turns
from aios.providers.translate import translate
from aios.settings import Endpoint


class OpenAIProvider:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.clients = ClientCache(endpoint, _build)

    async def complete(self, target: Target, request: ModelRequest, feedback: str | None, timeouts: Timeouts) -> Reply:
        client = self.clients.get(timeouts)
        try:
            if self.endpoint.api == "responses":
                return await self._responses(client, target, request, feedback)
            return await self._chat(client, target, request, feedback)
        except ProviderFailure:
            raise
        except Exception as exc:
            failure = translate(exc)
            if failure is None:
                raise
            raise failure from None

    async def _chat(self, client: openai.AsyncOpenAI, target: Target, request: ModelRequest, feedback: str | None) -> Reply:
        completion = await client.chat.completions.create(
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
        )
        if not completion.choices:
            raise ProviderFailure("answer has no choices", kind=FailureKind.invalid_answer)
        choice = completion.choices[0]
        if choice.message.refusal:
            raise ProviderFailure(f"model refused: {choice.message.refusal}", kind=FailureKind.invalid_answer)
        usage = completion.usage
        return Reply(
            content=choice.message.content or "",
            response_model=completion.model,
            response_id=completion.id,
            usage=Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens) if usage else Usage(),
            finish_reason=choice.finish_reason,
        )

    async def _responses(self, client: openai.AsyncOpenAI, target: Target, request: ModelRequest, feedback: str | None) -> Reply:
        response = await client.responses.create(
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
        )
        usage = response.usage
        return Reply(
            content=response.output_text,
            response_model=response.model,
            response_id=response.id,
            usage=Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens) if usage else Usage(),
            finish_reason=response.status,
        )


def _build(api_key: str, base_url: str | None, timeouts: Timeouts) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,  # the fallback policy retries, not the SDK
        timeout=openai.Timeout(timeouts.read, connect=timeouts.connect),
    )
