"""AGENTS.md <-> CLAUDE.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from aios.errors import ConfigError
from aios.portability.agents import (
    CLAUDE_ONLY_MARKER,
    CODEX_DOC_MAX_BYTES,
    GENERATED_MARKER,
    imports_agents,
    sync_agents,
)

from .conftest import snapshot

AGENTS = "# Project\n\nRun `pytest -q` before committing.\n"


def test_missing_claude_md_is_created_in_portable_form(tmp_path, cli):
    (tmp_path / "AGENTS.md").write_text(AGENTS)
    check = cli("sync", "agents", "--check", "--root", tmp_path)
    assert check.exit_code == 1 and "CLAUDE.md is missing" in check.stdout
    assert not (tmp_path / "CLAUDE.md").exists()
    run = cli("sync", "agents", "--root", tmp_path)
    assert run.exit_code == 0
    assert (tmp_path / "CLAUDE.md").read_text() == "@AGENTS.md\n"
    again = cli("sync", "agents", "--check", "--root", tmp_path)
    assert again.exit_code == 0 and "in sync" in again.stdout


def test_existing_claude_content_is_kept_below_a_marker(tmp_path):
    (tmp_path / "AGENTS.md").write_text(AGENTS)
    (tmp_path / "CLAUDE.md").write_text("# Claude notes\n\nPrefer small commits.\n")
    result = sync_agents(tmp_path)
    assert result.action == "update" and result.written
    text = (tmp_path / "CLAUDE.md").read_text()
    assert text == f"@AGENTS.md\n\n{CLAUDE_ONLY_MARKER}\n\n# Claude notes\n\nPrefer small commits.\n"
    assert any("kept below the marker" in w for w in result.warnings)
    before = snapshot(tmp_path / "CLAUDE.md")
    assert not sync_agents(tmp_path).drift
    assert snapshot(tmp_path / "CLAUDE.md") == before


def test_import_detection_ignores_code():
    assert imports_agents("@AGENTS.md\n")
    assert imports_agents("Read @./AGENTS.md first.\n")
    assert not imports_agents("```\n@AGENTS.md\n```\n")
    assert not imports_agents("Mention `@AGENTS.md` in docs.\n")
    assert not imports_agents("mail me@AGENTS.md\n")


def test_from_claude_generates_agents_md_with_imports_inlined(tmp_path, cli):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "style.md").write_text("Style: plain words.\nSee @nested.md\n")
    (tmp_path / "docs" / "nested.md").write_text("Nested rule.\n")
    (tmp_path / "CLAUDE.md").write_text(
        "# Rules\n\n@docs/style.md\n\nAsk @alice, mail bob@example.com.\n\n```\n@docs/style.md\n```\n"
    )
    check = cli("sync", "agents", "--from", "claude", "--check", "--root", tmp_path)
    assert check.exit_code == 1 and not (tmp_path / "AGENTS.md").exists()
    run = cli("sync", "agents", "--from", "claude", "--root", tmp_path)
    assert run.exit_code == 0, run.output
    text = (tmp_path / "AGENTS.md").read_text()
    assert text.splitlines()[0].startswith(GENERATED_MARKER + "; sha256:")
    assert "Style: plain words.\nSee Nested rule.\n" in text
    assert "Ask @alice, mail bob@example.com." in text
    assert "```\n@docs/style.md\n```" in text  # imports in code blocks stay as written
    # the marker makes CLAUDE.md the source for a plain sync and check
    assert not sync_agents(tmp_path, check=True).drift
    (tmp_path / "docs" / "nested.md").write_text("Changed rule.\n")
    result = sync_agents(tmp_path, check=True)
    assert result.drift and result.source == "claude"
    sync_agents(tmp_path)
    assert "See Changed rule." in (tmp_path / "AGENTS.md").read_text()


def test_import_cycles_and_missing_files_are_warned(tmp_path):
    (tmp_path / "a.md").write_text("A then @b.md\n")
    (tmp_path / "b.md").write_text("B then @a.md\n")
    (tmp_path / "CLAUDE.md").write_text("@a.md\n@missing.md\n@~/.claude/personal.md\n")
    result = sync_agents(tmp_path, "claude")
    text = (tmp_path / "AGENTS.md").read_text()
    assert "A then B then @a.md" in text
    joined = "\n".join(result.warnings)
    assert "import cycle" in joined and "@missing.md: file not found" in joined and "personal" in joined


def test_hand_written_agents_md_needs_force(tmp_path, cli):
    (tmp_path / "CLAUDE.md").write_text("Claude rules.\n")
    (tmp_path / "AGENTS.md").write_text("Hand written.\n")
    before = snapshot(tmp_path / "AGENTS.md")
    run = cli("sync", "agents", "--from", "claude", "--root", tmp_path)
    assert run.exit_code == 2 and "--force" in run.stderr and run.stderr.count("\n") == 1
    assert snapshot(tmp_path / "AGENTS.md") == before
    assert cli("sync", "agents", "--from", "claude", "--force", "--root", tmp_path).exit_code == 0
    text = (tmp_path / "AGENTS.md").read_text()
    assert text.startswith(GENERATED_MARKER) and text.endswith(" -->\n\nClaude rules.\n")


def test_from_claude_refuses_when_claude_imports_agents(tmp_path):
    (tmp_path / "AGENTS.md").write_text(AGENTS)
    (tmp_path / "CLAUDE.md").write_text("@AGENTS.md\n")
    with pytest.raises(ConfigError, match="already the source"):
        sync_agents(tmp_path, "claude")


def test_missing_agents_md_points_to_from_claude(tmp_path, cli):
    (tmp_path / "CLAUDE.md").write_text("Rules.\n")
    run = cli("sync", "agents", "--root", tmp_path)
    assert run.exit_code == 2 and "--from claude" in run.stderr


def test_large_agents_md_warns_about_codex_cap(tmp_path, cli):
    (tmp_path / "AGENTS.md").write_text("x" * (CODEX_DOC_MAX_BYTES + 1))
    (tmp_path / "CLAUDE.md").write_text("@AGENTS.md\n")
    run = cli("sync", "agents", "--check", "--root", tmp_path)
    assert run.exit_code == 0 and "project_doc_max_bytes" in run.stderr


def test_the_repository_instructions_are_in_sync():
    repo = Path(__file__).resolve().parents[2]
    result = sync_agents(repo, check=True)
    assert not result.drift and result.warnings == []
