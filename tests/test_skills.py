"""Skill loading: the examples load, and a broken skill gives one line naming the file and the field."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aios.core.triage import Triage
from aios.errors import ConfigError
from aios.skills.loader import load_skill, load_skills, parse_inputs

ROOT = Path(__file__).resolve().parents[1]
GOOD_FRONT = "---\nname: demo\ndescription: A demo skill.\nmetadata:\n  triage: defer\n---\nDo it.\n"
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}


def make_skill(tmp_path, front=GOOD_FRONT, schema=SCHEMA, name="demo"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "SKILL.md").write_text(front)
    if schema is not None:
        (folder / "output.schema.json").write_text(schema if isinstance(schema, str) else json.dumps(schema))
    return folder


def test_example_skills_load_with_their_triage_classes():
    skills = {s.name: s for s in load_skills(ROOT / "skills")}
    assert skills["research-lead"].triage is Triage.critical
    assert skills["weekly-report"].triage is Triage.defer
    assert skills["daily-news"].triage is Triage.drop
    assert all(s.default_inputs for s in skills.values()), "every example runs with no inputs given"


def test_metadata_values_are_typed_from_strings(tmp_path):
    front = GOOD_FRONT.replace("  triage: defer\n", '  triage: defer\n  memory: true\n  models: "anthropic:a, openai:b"\n')
    skill = load_skill(make_skill(tmp_path, front))
    assert skill.metadata.memory is True
    assert [str(m) for m in skill.metadata.models] == ["anthropic:a", "openai:b"]
    assert skill.front_matter.metadata["memory"] == "true"


BROKEN = [
    ("no front matter", "Just text\n", SCHEMA, "SKILL.md: missing YAML front matter"),
    ("bad yaml", "---\nname: [demo\n---\n", SCHEMA, "SKILL.md: front matter is not valid YAML"),
    ("bad triage", GOOD_FRONT.replace("defer", "urgent"), SCHEMA, "SKILL.md: metadata.triage:"),
    ("bad cron", GOOD_FRONT.replace("  triage: defer\n", "  schedule: every monday\n"), SCHEMA, "SKILL.md: metadata.schedule:"),
    ("name mismatch", GOOD_FRONT.replace("name: demo", "name: other"), SCHEMA, "SKILL.md: name: 'other' must equal"),
    ("bad name", GOOD_FRONT.replace("name: demo", "name: Demo_Skill"), SCHEMA, "SKILL.md: name: must be lowercase"),
    ("no description", GOOD_FRONT.replace("description: A demo skill.\n", ""), SCHEMA, "SKILL.md: description: Field required"),
    ("missing schema", GOOD_FRONT, None, "output.schema.json: output contract not found"),
    ("schema not json", GOOD_FRONT, "{oops", "output.schema.json: not valid JSON"),
    ("schema invalid", GOOD_FRONT, {"type": "object", "properties": {"a": {"type": "strin"}}}, "output.schema.json: not a valid JSON Schema"),
]


@pytest.mark.parametrize(("case", "front", "schema", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_skill_gives_one_line_naming_file_and_field(tmp_path, case, front, schema, expected):
    with pytest.raises(ConfigError) as info:
        load_skill(make_skill(tmp_path, front, schema))
    message = str(info.value)
    assert "\n" not in message
    assert expected in message


def test_cli_reports_a_broken_skill_in_one_line_without_traceback(tmp_path):
    (tmp_path / "skills").mkdir()
    make_skill(tmp_path / "skills", GOOD_FRONT.replace("defer", "urgent"))
    proc = subprocess.run(
        [sys.executable, "-m", "aios.cli", "skills"],
        capture_output=True, text=True, cwd=tmp_path, env={"AIOS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "skills/demo/SKILL.md: metadata.triage" in lines[0]
    assert "Traceback" not in proc.stderr


def test_inputs_parse_key_value_pairs_keeping_json_types():
    assert parse_inputs(["company=Acme Co", "size=120", "tags=[\"a\"]"]) == {"company": "Acme Co", "size": 120, "tags": ["a"]}
    with pytest.raises(ConfigError):
        parse_inputs(["nokey"])
