"""The output contract: parse an answer and check it against the skill's JSON Schema."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

from aios.core.failures import FailureKind, ProviderFailure
from aios.core.fallback import Reply


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    return _cached(json.dumps(schema, sort_keys=True))


@lru_cache(maxsize=256)
def _cached(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def parse_answer(content: Any) -> Any:
    """An answer's JSON: the text may be wrapped in a ```json fence by chattier models."""
    if not isinstance(content, str):
        return content
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProviderFailure(
            f"answer is not JSON ({exc.msg} at position {exc.pos})", kind=FailureKind.invalid_answer
        ) from None


def contract_validator(schema: dict[str, Any]):
    """A `validate(reply) -> output` function for the fallback loop."""
    validator = validator_for(schema)

    def validate(reply: Reply) -> dict[str, Any]:
        data = parse_answer(reply.content)
        error = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.path))), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise ProviderFailure(
                f"answer breaks the output contract at {where}: {error.message}", kind=FailureKind.invalid_answer
            )
        return data

    return validate


def is_strict_compatible(schema: Any) -> bool:
    """OpenAI's strict mode wants every object closed and every property required."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            props = schema.get("properties", {})
            if schema.get("additionalProperties") is not False or set(schema.get("required", [])) != set(props):
                return False
        return all(is_strict_compatible(v) for v in schema.values())
    if isinstance(schema, list):
        return all(is_strict_compatible(v) for v in schema)
    return True
