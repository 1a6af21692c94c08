"""A skill says in its front matter which records it works on; mistakes are one line naming the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aios.errors import ConfigError
from aios.skills.loader import load_skill

ROOT = Path(__file__).resolve().parents[2]


def copy_skill(tmp_path: Path, name: str = "research-lead") -> Path:
    folder = tmp_path / name
    shutil.copytree(ROOT / "skills" / name, folder)
    return folder


def set_metadata(folder: Path, old: str, new: str) -> None:
    path = folder / "SKILL.md"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_the_shipped_research_lead_works_on_new_leads_in_three_steps():
    skill = load_skill(ROOT / "skills" / "research-lead")
    assert str(skill.metadata.source) == "leads where status = new"
    assert [s.name for s in skill.steps] == ["research", "qualify", "draft"]
    assert skill.metadata.write_plan().fields >= {"status", "fit", "score", "next_step", "step_research"}
    assert all(s.output_schema["type"] == "object" for s in skill.steps)


def test_a_step_without_its_instructions_file_is_one_line_naming_the_file(tmp_path):
    folder = copy_skill(tmp_path)
    (folder / "steps" / "draft.md").unlink()
    with pytest.raises(ConfigError) as err:
        load_skill(folder)
    assert "steps/draft.md" in str(err.value) and "has no instructions file" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_step_without_its_contract_names_the_contract_file(tmp_path):
    folder = copy_skill(tmp_path)
    (folder / "steps" / "qualify.schema.json").unlink()
    with pytest.raises(ConfigError, match="qualify.schema.json"):
        load_skill(folder)


def test_a_broken_source_names_the_metadata_field(tmp_path):
    folder = copy_skill(tmp_path)
    set_metadata(folder, "leads where status = new", "leads where status")
    with pytest.raises(ConfigError, match="metadata.source") as err:
        load_skill(folder)
    assert "is not of the form field = value" in str(err.value)


def test_updates_without_a_source_are_refused(tmp_path):
    folder = copy_skill(tmp_path)
    set_metadata(folder, '  source: "leads where status = new"\n', "")
    with pytest.raises(ConfigError, match="set metadata.source"):
        load_skill(folder)


def test_a_skill_without_a_source_works_on_inputs_only():
    skill = load_skill(ROOT / "skills" / "daily-news")
    assert skill.metadata.write_plan() is None and skill.steps == ()


def test_the_weekly_report_reads_qualified_leads_and_writes_none():
    skill = load_skill(ROOT / "skills" / "weekly-report")
    assert str(skill.metadata.reads) == "leads where status = qualified"
    assert skill.metadata.write_plan() is None, "a report reads records; it writes none"
    assert "leads" in skill.default_inputs, "sample leads so it runs with no store"


def test_a_broken_reads_names_the_metadata_field(tmp_path):
    folder = copy_skill(tmp_path, "weekly-report")
    set_metadata(folder, "leads where status = qualified", "leads where status qualified")
    with pytest.raises(ConfigError, match="metadata.reads") as err:
        load_skill(folder)
    assert "\n" not in str(err.value)
