"""What every provider adapter receives and returns; the adapters themselves stay thin."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel

from aios.core.fallback import Reply
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
