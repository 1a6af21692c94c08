"""The prompt a skill run sends: the same system and user messages for every provider (and for validation)."""

from __future__ import annotations

import json
from typing import Any

from aios.config.runtime import get_runtime
from aios.providers import ModelRequest
from aios.skills.loader import Skill
from aios.skills.prompt_context import PromptContext, assemble_context


def build_prompt(instructions: str, context: PromptContext, inputs: dict[str, Any]) -> tuple[str, str]:
    """(system, user) messages: the same for Anthropic, OpenAI and any other model."""
    system = (
        "You run one skill of an AI operating system for a business. The business context follows, "
        "then the skill's instructions. Answer only with a JSON object that satisfies the output contract.\n\n"
        f"# Business context\n\n{context.text}\n\n# Skill instructions\n\n{instructions}"
    )
    user = "Inputs for this run (JSON):\n\n" + json.dumps(inputs, ensure_ascii=False, indent=2, sort_keys=True)
    return system, user


def skill_request(skill: Skill, inputs: dict[str, Any]) -> ModelRequest:
    """The question a skill asks: the same for every provider (and for cross-model validation)."""
    settings = get_runtime().settings
    context = assemble_context(settings.home, settings.context_max_chars, settings.memory_path)
    system, prompt = build_prompt(skill.instructions, context, inputs)
    return ModelRequest(
        system=system,
        prompt=prompt,
        schema_name=skill.name.replace("-", "_"),
        output_schema=skill.output_schema,
        max_tokens=settings.max_tokens,
    )
