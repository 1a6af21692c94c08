"""A skill's inputs as a JSON Schema: the named fields of the Prefect UI's Run form, checked by the API.

Derived from the sample inputs in `inputs.json` (each sample's JSON type, the sample as the default), or
written by hand in an optional `inputs.schema.json` beside it (the samples fill in the defaults it leaves
out). Unknown names are refused, as `aios run --input` refuses them.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from aios.errors import ConfigError
from aios.files import read_user_text_or_none
from aios.skills.loader import INPUTS_FILE, Skill

SCHEMA_FILE = "inputs.schema.json"


def input_schema(skill: Skill) -> dict[str, Any]:
    """The schema of the skill's `inputs` object: one property per input, each with its sample as default."""
    path = skill.folder / SCHEMA_FILE
    text = read_user_text_or_none(path)
    if text is None:
        return schema_from_samples(skill.default_inputs)
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(schema, dict) or schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise ConfigError(path, "must describe a JSON object: {\"type\": \"object\", \"properties\": {...}}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise ConfigError(path, f"not a valid JSON Schema at {where}: {exc.message}") from None
    error = next(iter(Draft202012Validator(schema).iter_errors(skill.default_inputs)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise ConfigError(skill.folder / INPUTS_FILE, f"the sample at {where} does not match {SCHEMA_FILE}: {error.message}")
    properties = {
        name: {**spec, "default": skill.default_inputs[name]}
        if name in skill.default_inputs and isinstance(spec, dict) and "default" not in spec
        else spec
        for name, spec in schema["properties"].items()
    }
    return {"additionalProperties": False, **schema, "properties": properties}


def schema_from_samples(samples: dict[str, Any]) -> dict[str, Any]:
    """Each sample's JSON type, the sample as default; nothing required (the samples fill what is not given)."""
    return {
        "type": "object",
        "properties": {name: {**json_type(value), "default": value} for name, value in samples.items()},
        "additionalProperties": False,
    }


def json_type(value: Any) -> dict[str, Any]:
    """The JSON Schema type of one sample value (a list of one kind of thing names its items' type too)."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, dict):
        return {"type": "object"}
    items = [json_type(v) for v in value]
    if items and all(i == items[0] for i in items) and items[0]:
        return {"type": "array", "items": items[0]}
    return {"type": "array"}
