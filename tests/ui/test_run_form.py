"""Runs started from the Prefect UI: the skill deployment's Run form names each input, with the sample
as its default, and the API refuses a value of the wrong type or an input the skill does not declare."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aios.errors import ConfigError
from aios.skills.input_schema import input_schema
from aios.skills.loader import load_skill

ROOT = Path(__file__).resolve().parents[2]


def research_lead_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "research-lead"
    shutil.copytree(ROOT / "skills" / "research-lead", folder)
    return folder


def test_each_sample_input_becomes_a_typed_field_with_the_sample_as_default(tmp_path):
    folder = research_lead_copy(tmp_path)
    (folder / "inputs.json").write_text(json.dumps({"company": "Acme", "seats": 12, "tags": ["a", "b"], "pilot": True}))
    schema = input_schema(load_skill(folder))
    assert schema["properties"] == {
        "company": {"type": "string", "default": "Acme"},
        "seats": {"type": "integer", "default": 12},
        "tags": {"type": "array", "items": {"type": "string"}, "default": ["a", "b"]},
        "pilot": {"type": "boolean", "default": True},
    }
    assert schema["additionalProperties"] is False and "required" not in schema


def test_a_hand_written_inputs_schema_keeps_its_rules_and_takes_the_samples_as_defaults(tmp_path):
    folder = research_lead_copy(tmp_path)
    (folder / "inputs.schema.json").write_text(json.dumps({
        "type": "object",
        "properties": {
            "company": {"type": "string", "minLength": 2, "description": "Who the lead is"},
            "website": {"type": "string", "format": "uri"},
            "contact": {"type": "string", "default": "someone"},
        },
    }))
    schema = input_schema(load_skill(folder))
    assert schema["properties"]["company"] == {
        "type": "string", "minLength": 2, "description": "Who the lead is", "default": "Northwind Robotics"
    }
    assert schema["properties"]["contact"]["default"] == "someone"  # the schema's own default wins
    assert schema["additionalProperties"] is False


def test_a_sample_that_breaks_the_inputs_schema_is_one_line_naming_inputs_json(tmp_path):
    folder = research_lead_copy(tmp_path)
    (folder / "inputs.schema.json").write_text(json.dumps({"type": "object", "properties": {"company": {"type": "integer"}}}))
    with pytest.raises(ConfigError) as exc:
        input_schema(load_skill(folder))
    assert exc.value.path == str(folder / "inputs.json")
    assert "company" in exc.value.problem and "inputs.schema.json" in exc.value.problem and "\n" not in str(exc.value)


def test_an_inputs_schema_that_is_not_an_object_schema_is_refused(tmp_path):
    folder = research_lead_copy(tmp_path)
    (folder / "inputs.schema.json").write_text(json.dumps({"type": "string"}))
    with pytest.raises(ConfigError) as exc:
        input_schema(load_skill(folder))
    assert exc.value.path == str(folder / "inputs.schema.json")


def test_the_skill_flow_parameter_carries_the_input_schema():
    from flows.skill_flow import build_skill_flow

    inputs = build_skill_flow("research-lead").parameters.model_dump_for_openapi()["properties"]["inputs"]
    samples = json.loads((ROOT / "skills" / "research-lead" / "inputs.json").read_text())
    assert inputs["default"] == samples
    assert {k: v["default"] for k, v in inputs["properties"].items()} == samples


@pytest.mark.e2e
async def test_the_deployment_names_each_input_and_the_api_refuses_a_wrong_typed_one(deployed):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.states import Scheduled

    from aios.outage.deferral import deployment_name

    samples = json.loads((ROOT / "skills" / "weekly-report" / "inputs.json").read_text())
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(deployment_name("weekly-report"))
        assert deployment.enforce_parameter_schema
        fields = deployment.parameter_openapi_schema["properties"]["inputs"]["properties"]
        assert {name: spec["default"] for name, spec in fields.items()} == samples
        assert {name: spec["type"] for name, spec in fields.items()} == {"week": "string", "leads": "array"}

        refusals = {}
        for bad in ({"week": 42}, {"wek": "2026-W48"}):
            with pytest.raises(PrefectHTTPStatusError) as exc:
                await client.create_flow_run_from_deployment(deployment.id, parameters={"inputs": bad})
            refusals[next(iter(bad))] = exc.value.response
        assert {r.status_code for r in refusals.values()} <= {409, 422}, {k: r.status_code for k, r in refusals.items()}
        assert "42 is not of type 'string'" in refusals["week"].text, refusals["week"].text
        assert "wek" in refusals["wek"].text, refusals["wek"].text

        # a right-typed value is accepted (scheduled far ahead so the worker leaves it alone, then removed)
        good = await client.create_flow_run_from_deployment(
            deployment.id, parameters={"inputs": {"week": "2026-W48"}}, state=Scheduled(scheduled_time=_far_future())
        )
        try:
            assert good.parameters == {"inputs": {"week": "2026-W48"}}
        finally:
            await client.delete_flow_run(good.id)


def _far_future():
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(days=365)
