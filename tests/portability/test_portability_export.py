"""Skill export to Claude Code, Codex and a plugin marketplace for both."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from aios.errors import ConfigError
from aios.portability.ownership import RefusedError
from aios.portability.export import (
    PLUGIN_NAME,
    ExportTarget,
    export_skills,
    is_secret_file,
    skill_fingerprint,
)
from aios.skills.loader import load_skill, load_skills, split_front_matter

from .conftest import FIXTURES, REPO

SKILL_DIRS = {
    ExportTarget.claude: Path(".claude/skills"),
    ExportTarget.codex: Path(".agents/skills"),
    ExportTarget.plugin: Path("plugins") / PLUGIN_NAME / "skills",
}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A project with the fixture skills plus the repository's own, and secret-looking files."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "skills", root / "skills")
    for folder in (REPO / "skills").iterdir():
        if (folder / "SKILL.md").exists():
            shutil.copytree(folder, root / "skills" / folder.name)
    (root / "skills" / "lead-digest" / ".env").write_text("OPENAI_API_KEY=sk-fake-for-tests\n")
    (root / "skills" / "lead-digest" / "templates" / "api_token.txt").write_text("token=fake\n")
    (root / "skills" / "lead-digest" / "__pycache__").mkdir()
    (root / "skills" / "lead-digest" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    return root


def assert_same(exported, original):
    assert exported.name == original.name
    assert exported.description == original.description
    assert exported.metadata == original.metadata
    assert exported.front_matter == original.front_matter
    assert exported.instructions == original.instructions
    assert exported.output_schema == original.output_schema
    assert exported.default_inputs == original.default_inputs
    assert skill_fingerprint(exported) == skill_fingerprint(original)


@pytest.mark.parametrize("target", list(ExportTarget))
def test_exported_skills_load_back_identically(source, tmp_path, target):
    dest = tmp_path / "out"
    result = export_skills(source, target, dest)
    originals = load_skills(source / "skills")
    assert result.skills == [s.name for s in originals]
    for original in originals:
        folder = dest / SKILL_DIRS[target] / original.name
        assert_same(load_skill(folder), original)
    digest = dest / SKILL_DIRS[target] / "lead-digest"
    assert (digest / "templates" / "email.txt").read_text() == "Dear {name},\n"
    assert (digest / "inputs.json").exists() and (digest / "output.schema.json").exists()
    # secrets and caches stay behind, and say so
    assert not (digest / ".env").exists() and not (digest / "templates" / "api_token.txt").exists()
    assert not (digest / "__pycache__").exists()
    assert any("lead-digest/.env: looks like a secret" in w for w in result.warnings)
    assert any("lead-digest/templates/api_token.txt" in w for w in result.warnings)


def test_front_matter_keeps_to_the_agent_skills_rules(source, tmp_path):
    dest = tmp_path / "out"
    result = export_skills(source, "codex", dest)
    folder = dest / ".agents/skills/lead-digest"
    data, _ = split_front_matter((folder / "SKILL.md").read_text(), folder / "SKILL.md")
    assert data["name"] == "lead-digest" and len(data["name"]) <= 64
    assert len(data["description"]) <= 1024
    assert all(isinstance(v, str) for v in data["metadata"].values())
    assert data["metadata"]["memory"] == "true" and data["metadata"]["compare"] == "fit, priority"
    assert data["license"] == "Proprietary"
    assert any("lead-digest: front matter rewritten" in w for w in result.warnings)
    # an already compliant SKILL.md is copied byte for byte
    for name in ("plain-skill", "research-lead", "daily-news"):
        exported = (dest / ".agents/skills" / name / "SKILL.md").read_bytes()
        assert exported == (source / "skills" / name / "SKILL.md").read_bytes()


def test_plugin_marketplaces_for_both_tools(source, tmp_path, cli):
    dest = tmp_path / "market"
    run = cli("export", "--to", "plugin", dest, "--root", source, "--owner", "Brightline")
    assert run.exit_code == 0, run.output
    claude_market = json.loads((dest / ".claude-plugin/marketplace.json").read_text())
    assert claude_market["name"] == "aios" and claude_market["owner"] == {"name": "Brightline"}
    [entry] = claude_market["plugins"]
    assert entry["name"] == PLUGIN_NAME and entry["source"] == f"./plugins/{PLUGIN_NAME}"
    assert entry["description"] and entry["version"]
    claude_plugin = json.loads((dest / f"plugins/{PLUGIN_NAME}/.claude-plugin/plugin.json").read_text())
    assert set(claude_plugin) >= {"name", "version", "description", "author"}
    assert claude_plugin["author"] == {"name": "Brightline"}
    codex_plugin = json.loads((dest / f"plugins/{PLUGIN_NAME}/.codex-plugin/plugin.json").read_text())
    assert codex_plugin["name"] == PLUGIN_NAME and codex_plugin["skills"] == "./skills/"
    codex_market = json.loads((dest / ".agents/plugins/marketplace.json").read_text())
    [entry] = codex_market["plugins"]
    assert entry == {
        "name": PLUGIN_NAME,
        "source": {"source": "local", "path": f"./plugins/{PLUGIN_NAME}"},
        "policy": {"installation": "AVAILABLE", "authentication": "ON_INSTALL"},
        "category": "Productivity",
    }
    # 2-space JSON
    assert (dest / ".claude-plugin/marketplace.json").read_text().startswith('{\n  "name": "aios",')


def test_plugin_export_merges_existing_marketplaces_and_keeps_the_users_skill_folders(source, tmp_path):
    dest = tmp_path / "market"
    (dest / ".claude-plugin").mkdir(parents=True)
    other = {"name": "other", "source": "./plugins/other", "description": "d", "version": "1"}
    (dest / ".claude-plugin/marketplace.json").write_text(
        json.dumps({"name": "team", "owner": {"name": "Team"}, "plugins": [other]})
    )
    stale = dest / "plugins" / PLUGIN_NAME / "skills" / "old-skill"
    stale.mkdir(parents=True)
    (stale / "SKILL.md").write_text("---\nname: old-skill\n---\n")
    export_skills(source, "plugin", dest)
    market = json.loads((dest / ".claude-plugin/marketplace.json").read_text())
    assert market["name"] == "team" and market["owner"] == {"name": "Team"}
    assert [p["name"] for p in market["plugins"]] == ["other", PLUGIN_NAME]
    assert (stale / "SKILL.md").read_text() == "---\nname: old-skill\n---\n"  # not aios's: kept
    export_skills(source, "plugin", dest)  # idempotent: still one entry of ours
    market = json.loads((dest / ".claude-plugin/marketplace.json").read_text())
    assert [p["name"] for p in market["plugins"]] == ["other", PLUGIN_NAME]


def test_re_export_replaces_the_folder_only_with_force(source, tmp_path):
    dest = tmp_path / "out"
    export_skills(source, "claude", dest)
    leftover = dest / ".claude/skills/lead-digest/removed.txt"
    leftover.write_text("old")
    other = dest / ".claude/skills/hand-made"
    other.mkdir()
    with pytest.raises(RefusedError, match=r"lead-digest: changed since aios exported it \(removed.txt\)"):
        export_skills(source, "claude", dest)
    assert leftover.read_text() == "old"
    result = export_skills(source, "claude", dest, force=True)
    [(old, backup)] = result.backups
    assert old == leftover.parent and (backup / "removed.txt").read_text() == "old"
    assert not leftover.exists() and other.exists()
    assert [p.name for p in (dest / ".claude/skills").iterdir() if p.name.startswith(".")] == []


def test_broken_skill_or_marketplace_writes_nothing(source, tmp_path, cli):
    dest = tmp_path / "market"
    (dest / ".agents/plugins").mkdir(parents=True)
    (dest / ".agents/plugins/marketplace.json").write_text("{broken")
    run = cli("export", "--to", "plugin", dest, "--root", source)
    assert run.exit_code == 2 and "marketplace.json: not valid JSON" in run.stderr
    assert not (dest / "plugins").exists()
    (source / "skills" / "bad").mkdir()
    (source / "skills" / "bad" / "SKILL.md").write_text("---\nname: Bad Name\ndescription: x\n---\n")
    with pytest.raises(ConfigError, match="name"):
        export_skills(source, "claude", tmp_path / "other")
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize(
    ("name", "secret"),
    [(".env", True), (".env.local", True), ("prod.env", True), ("server.pem", True), ("id_ed25519", True),
     ("client_secret.json", True), ("credentials.json", True), ("SKILL.md", False), ("inputs.json", False)],
)
def test_secret_file_names(name, secret):
    assert is_secret_file(name) is secret


def test_export_front_matter_is_valid_yaml(source, tmp_path):
    export_skills(source, "claude", tmp_path / "out")
    text = (tmp_path / "out/.claude/skills/lead-digest/SKILL.md").read_text()
    head = text.split("\n---", 1)[0][3:]
    assert yaml.safe_load(head)["metadata"]["schedule"] == "0 7 * * 1-5"
