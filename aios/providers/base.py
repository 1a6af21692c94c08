"""What every provider adapter receives and returns; the adapters themselves stay thin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from aios.core.failures import FailureKind, ProviderFailure
from aios.core.fallback import Reply
from aios.core.hedge import response_started
from aios.core.policy import Target, Timeouts


class ModelRequest(BaseModel):
    """One skill's question, identical for every provider."""

    system: str
    prompt: str
    schema_name: str
    output_schema: dict[str, Any]
    max_tokens: int = 4096


class Provider(Protocol):
    async def complete(self, target: Target, request: ModelRequest, feedback: str | None, timeouts: Timeouts) -> Reply:
        """Call the model once (no retries) or raise `ProviderFailure`."""
        ...


C = TypeVar("C")


class ClientCache(Generic[C]):
    """One SDK client per (key, base URL, timeouts), built on first use and shared by every run.

    `build(api_key, base_url, timeouts)` must switch the SDK's own retries off (`max_retries=0`):
    the fallback policy retries, so a failover costs one failed round trip.
    """

    def __init__(self, endpoint: Any, build: Callable[[str, str | None, Timeouts], C]) -> None:
        self.endpoint = endpoint
        self.build = build
        self._clients: dict[tuple, C] = {}

    def get(self, timeouts: Timeouts) -> C:
        key = self.endpoint.api_key()
        if not key:
            raise ProviderFailure(f"{self.endpoint.api_key_env} is not set", kind=FailureKind.missing_key)
        base_url = self.endpoint.resolved_base_url()
        cache_key = (key, base_url, timeouts)
        client = self._clients.get(cache_key)
        if client is None:
            client = self._clients[cache_key] = self.build(key, base_url, timeouts)
        return client


async def response_began(response: Any) -> None:
    """httpx response hook of every SDK client: the status line came, so the call's target is alive."""
    response_started()


REASK = (
    "Your previous answer did not satisfy the output contract: {problem}. "
    "Answer again with only a JSON object that satisfies the schema."
)


def user_turns(request: ModelRequest, feedback: str | None) -> list[dict[str, str]]:
    """The conversation: the prompt, plus the validation problem when re-asking."""
    turns = [{"role": "user", "content": request.prompt}]
    if feedback:
        turns.append({"role": "assistant", "content": "(answer omitted)"})
        turns.append({"role": "user", "content": REASK.format(problem=feedback)})
    return turns
