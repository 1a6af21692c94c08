"""Never destroy what the user has: MCP sync, skill export, instructions and memory keep the user's files.

Every case runs the real CLI and compares the user's bytes before and after.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import tomlkit

from .conftest import FIXTURES, REPO, snapshot

EXPORT_MARKER = ".aios-export.json"  # written into each exported skill folder
PLUGIN_NAME = "aios-skills"

# --------------------------------------------------------------------------- MCP sync

USER_CODEX = """\
# My Codex setup: hands off, aios.
model = "gpt-5-codex"

[mcp_servers.filesystem]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "./knowledge"]
cwd = "/srv/project"   # Codex-only
scopes = ["read"]      # a key aios does not know

# My own servers, not in .mcp.json:
[mcp_servers.linear]
url = "https://mcp.linear.app/mcp"
bearer_token_env_var = "LINEAR_TOKEN"

[mcp_servers.sqlite]
command = "uvx"
args = ["mcp-server-sqlite", "--db-path", "./data.db"]

[profiles.fast]
model = "gpt-5-mini"
"""

CLAUDE_SERVERS = {
    "filesystem": {"type": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "./knowledge"]},
}


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


@pytest.fixture
def mcp_project(project: Path) -> Path:
    (project / ".codex" / "config.toml").write_text(USER_CODEX)
    write_json(project / ".mcp.json", {"mcpServers": CLAUDE_SERVERS})
    return project


def test_sync_from_claude_keeps_the_users_own_codex_servers(mcp_project, cli):
    toml_path = mcp_project / ".codex" / "config.toml"
    before = snapshot(toml_path)
    run = cli("sync", "mcp", "--from", "claude", "--root", mcp_project)
    assert run.exit_code == 0, run.output
    assert "only in config.toml: linear, sqlite (kept; --prune removes them)" in run.stdout
    assert snapshot(toml_path) == before  # nothing else to do: not even rewritten
    check = cli("sync", "mcp", "--check", "--root", mcp_project)
    assert check.exit_code == 0 and "only in config.toml: linear, sqlite" in check.stdout


def test_sync_from_claude_adds_a_server_and_leaves_every_user_byte_in_place(mcp_project, cli):
    crm = {"type": "http", "url": "https://crm.example.com/mcp", "headers": {"Authorization": "Bearer ${CRM_TOKEN}"}}
    write_json(mcp_project / ".mcp.json", {"mcpServers": CLAUDE_SERVERS | {"crm": crm}})
    toml_path = mcp_project / ".codex" / "config.toml"
    run = cli("sync", "mcp", "--root", mcp_project)
    assert run.exit_code == 0, run.output
    assert "wrote .codex/config.toml: 1 added, 0 updated, 0 removed" in run.stdout
    text = toml_path.read_text()
    added = '[mcp_servers.crm]\nurl = "https://crm.example.com/mcp"\nbearer_token_env_var = "CRM_TOKEN"\n\n'
    assert added in text
    assert text.replace(added, "") == USER_CODEX  # the user's file byte for byte, plus the new table


def test_sync_with_prune_removes_servers_only_codex_has(mcp_project, cli):
    run = cli("sync", "mcp", "--prune", "--root", mcp_project)
    assert run.exit_code == 0, run.output
    assert "- linear: removed" in run.stdout and "- sqlite: removed" in run.stdout
    doc = tomlkit.parse((mcp_project / ".codex" / "config.toml").read_text()).unwrap()
    assert set(doc["mcp_servers"]) == {"filesystem"} and doc["profiles"] == {"fast": {"model": "gpt-5-mini"}}


def test_sync_from_codex_keeps_the_users_own_claude_servers(mcp_project, cli):
    mine = {"notes": {"type": "stdio", "command": "notes-mcp"}, "wiki": {"type": "http", "url": "https://wiki/mcp"}}
    claude_path = mcp_project / ".mcp.json"
    write_json(claude_path, {"mcpServers": mine, "note": "mine"})
    (mcp_project / ".codex" / "config.toml").write_text(
        '[mcp_servers.sqlite]\ncommand = "uvx"\nargs = ["mcp-server-sqlite"]\n'
    )
    run = cli("sync", "mcp", "--from", "codex", "--root", mcp_project)
    assert run.exit_code == 0, run.output
    assert "only in .mcp.json: notes, wiki (kept; --prune removes them)" in run.stdout
    data = json.loads(claude_path.read_text())
    assert data["note"] == "mine"
    assert data["mcpServers"] == mine | {"sqlite": {"type": "stdio", "command": "uvx", "args": ["mcp-server-sqlite"]}}
    pruned = cli("sync", "mcp", "--from", "codex", "--prune", "--root", mcp_project)
    assert pruned.exit_code == 0 and "- notes: removed" in pruned.stdout
    assert list(json.loads(claude_path.read_text())["mcpServers"]) == ["sqlite"]


def test_a_literal_secret_stops_the_sync_before_anything_is_written(mcp_project, cli):
    toml_path = mcp_project / ".codex" / "config.toml"
    crm = {"type": "http", "url": "https://mcp.linear.app/mcp", "headers": {"Authorization": "Bearer lin_api_0123456789abcdef"}}
    write_json(mcp_project / ".mcp.json", {"mcpServers": CLAUDE_SERVERS | {"linear": crm, "new": {"command": "x"}}})
    before = snapshot(toml_path)
    run = cli("sync", "mcp", "--root", mcp_project)
    assert run.exit_code == 1
    assert "problem: linear: header Authorization holds a literal secret; not copied" in run.stderr
    assert "not written: .codex/config.toml is left as it was" in run.stdout
    assert snapshot(toml_path) == before  # bearer_token_env_var = "LINEAR_TOKEN" still there, byte for byte


def test_a_literal_secret_in_config_toml_leaves_mcp_json_alone(mcp_project, cli):
    claude_path = mcp_project / ".mcp.json"
    (mcp_project / ".codex" / "config.toml").write_text(
        '[mcp_servers.db]\ncommand = "db-mcp"\nenv = { DB_PASSWORD = "hunter2" }\n'
    )
    before = snapshot(claude_path)
    run = cli("sync", "mcp", "--from", "codex", "--root", mcp_project)
    assert run.exit_code == 1 and "db: env DB_PASSWORD holds a literal secret" in run.stderr
    assert snapshot(claude_path) == before


def test_written_config_toml_ends_with_one_newline(project, cli):
    (project / ".codex" / "config.toml").write_text('model = "gpt-5-codex"')  # the user left no final newline
    write_json(project / ".mcp.json", {"mcpServers": CLAUDE_SERVERS})
    assert cli("sync", "mcp", "--root", project).exit_code == 0
    text = (project / ".codex" / "config.toml").read_text()
    assert text.startswith('model = "gpt-5-codex"\n') and text.endswith('"./knowledge"]\n')
    assert not text.endswith("\n\n")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (".mcp.json", '{"mcpServers": {"a": {"command": "x"},}}', ".mcp.json: not valid JSON (line 1"),
        (".mcp.json", "[1, 2]", ".mcp.json: must be a JSON object, not a list"),
        (".codex/config.toml", "[mcp_servers.a\ncommand = 1\n", "config.toml: not valid TOML"),
        (".codex/config.toml", 'mcp_servers = "none"\n', "config.toml: mcp_servers: must be a table of servers"),
    ],
)
def test_a_malformed_file_is_one_line_exit_2_and_nothing_written(mcp_project, cli, name, content, message):
    (mcp_project / name).write_text(content)
    paths = (mcp_project / ".mcp.json", mcp_project / ".codex" / "config.toml")
    before = snapshot(*paths)
    for source in ("claude", "codex"):
        run = cli("sync", "mcp", "--from", source, "--root", mcp_project)
        assert run.exit_code == 2 and message in run.stderr
        assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert snapshot(*paths) == before


# --------------------------------------------------------------------------- skill export

SKILL_DIRS = {"claude": Path(".claude/skills"), "codex": Path(".agents/skills"), "plugin": Path("plugins") / PLUGIN_NAME / "skills"}


@pytest.fixture
def skills_root(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(REPO / "skills" / "research-lead", root / "skills" / "research-lead")
    shutil.copytree(FIXTURES / "skills" / "plain-skill", root / "skills" / "plain-skill")
    return root


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def users_skill(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text("---\nname: research-lead\ndescription: My own version.\n---\nMine.\n")
    (folder / "notes.md").write_text("Notes I keep here.\n")
    return files_of(folder)


@pytest.mark.parametrize("target", ["claude", "codex", "plugin"])
def test_export_refuses_to_replace_the_users_skill_folder(skills_root, tmp_path, cli, target):
    dest = tmp_path / "dest"
    folder = dest / SKILL_DIRS[target] / "research-lead"
    mine = users_skill(folder)
    run = cli("export", "--to", target, dest, "--root", skills_root)
    assert run.exit_code == 1
    [line] = [line for line in run.stderr.splitlines() if line]
    assert line == f"refused: {folder}: not written by aios; --force backs it up and replaces it"
    assert files_of(folder) == mine
    assert not (dest / SKILL_DIRS[target] / "plain-skill").exists()  # a refusal writes nothing at all


@pytest.mark.parametrize("target", ["claude", "codex", "plugin"])
def test_export_with_force_backs_the_users_folder_up_and_names_the_backup(skills_root, tmp_path, cli, target):
    dest = tmp_path / "dest"
    folder = dest / SKILL_DIRS[target] / "research-lead"
    mine = users_skill(folder)
    run = cli("export", "--to", target, dest, "--root", skills_root, "--force")
    assert run.exit_code == 0, run.output
    [line] = [line for line in run.stdout.splitlines() if line.startswith("backup")]
    match = re.fullmatch(r"backup  (\S+) -> (\S+)", line)
    assert match and Path(match.group(1)) == folder
    backup = Path(match.group(2))
    assert backup.is_relative_to(dest / ".aios-backups") and re.search(r"/\d{8}T\d{6}Z", str(backup))
    assert files_of(backup) == mine
    assert (folder / "SKILL.md").read_bytes() == (skills_root / "skills/research-lead/SKILL.md").read_bytes()
    assert not (folder / "notes.md").exists()


def test_re_export_over_an_unchanged_export_needs_no_force(skills_root, tmp_path, cli):
    dest = tmp_path / "dest"
    assert cli("export", "--to", "claude", dest, "--root", skills_root).exit_code == 0
    folder = dest / ".claude/skills/research-lead"
    assert json.loads((folder / EXPORT_MARKER).read_text())["files"]["SKILL.md"].startswith("sha256:")
    (skills_root / "skills/research-lead/SKILL.md").write_text(
        (skills_root / "skills/research-lead/SKILL.md").read_text() + "\nOne more rule.\n"
    )
    run = cli("export", "--to", "claude", dest, "--root", skills_root)
    assert run.exit_code == 0, run.output
    assert (folder / "SKILL.md").read_text().endswith("One more rule.\n")
    assert not (dest / ".aios-backups").exists()


@pytest.mark.parametrize("change", ["edit", "add"])
def test_re_export_refuses_an_export_the_user_changed_since(skills_root, tmp_path, cli, change):
    dest = tmp_path / "dest"
    assert cli("export", "--to", "codex", dest, "--root", skills_root).exit_code == 0
    folder = dest / ".agents/skills/research-lead"
    if change == "edit":
        (folder / "SKILL.md").write_text((folder / "SKILL.md").read_text() + "\nMy tweak.\n")
        why = "changed since aios exported it (SKILL.md)"
    else:
        (folder / "notes.md").write_text("Mine.\n")
        why = "changed since aios exported it (notes.md)"
    before = files_of(folder)
    run = cli("export", "--to", "codex", dest, "--root", skills_root)
    assert run.exit_code == 1
    assert run.stderr.strip() == f"refused: {folder}: {why}; --force backs it up and replaces it"
    assert files_of(folder) == before


def test_plugin_export_keeps_a_stale_folder_the_user_wrote(skills_root, tmp_path, cli):
    dest = tmp_path / "dest"
    assert cli("export", "--to", "plugin", dest, "--root", skills_root).exit_code == 0
    skills = dest / SKILL_DIRS["plugin"]
    mine = users_skill(skills / "my-own")
    shutil.rmtree(skills_root / "skills" / "plain-skill")
    run = cli("export", "--to", "plugin", dest, "--root", skills_root)
    assert run.exit_code == 0, run.output
    assert not (skills / "plain-skill").exists()  # ours, unchanged: removed
    assert files_of(skills / "my-own") == mine
    assert "my-own: not written by aios; kept in the plugin (delete it by hand if unwanted)" in run.stderr


def test_plugin_export_refuses_to_replace_a_plugin_json_the_user_edited(skills_root, tmp_path, cli):
    dest = tmp_path / "dest"
    assert cli("export", "--to", "plugin", dest, "--root", skills_root).exit_code == 0
    manifest = dest / "plugins" / PLUGIN_NAME / ".claude-plugin" / "plugin.json"
    manifest.write_text(manifest.read_text().replace('"description"', '"homepage": "https://mine", "description"'))
    before = snapshot(manifest)
    run = cli("export", "--to", "plugin", dest, "--root", skills_root, "--owner", "Someone")
    assert run.exit_code == 1
    assert run.stderr.strip() == f"refused: {manifest}: changed since aios exported it; --force backs it up and replaces it"
    assert snapshot(manifest) == before
    forced = cli("export", "--to", "plugin", dest, "--root", skills_root, "--owner", "Someone", "--force")
    assert forced.exit_code == 0, forced.output
    [line] = [line for line in forced.stdout.splitlines() if line.startswith("backup")]
    assert Path(line.split(" -> ")[1]).read_bytes() == before[manifest][0]


# --------------------------------------------------------------------------- instructions and memory


def test_claude_md_linked_to_agents_md_is_left_alone(tmp_path, cli):
    (tmp_path / "AGENTS.md").write_text("# Rules\n")
    os.symlink("AGENTS.md", tmp_path / "CLAUDE.md")
    run = cli("sync", "agents", "--root", tmp_path)
    assert run.exit_code == 0 and "in sync" in run.stdout
    assert (tmp_path / "CLAUDE.md").is_symlink() and (tmp_path / "AGENTS.md").read_text() == "# Rules\n"


def test_agents_md_linked_to_claude_md_is_left_alone(tmp_path, cli):
    (tmp_path / "CLAUDE.md").write_text("# Rules\n")
    os.symlink("CLAUDE.md", tmp_path / "AGENTS.md")
    for args in ((), ("--from", "claude"), ("--from", "claude", "--force")):
        run = cli("sync", "agents", *args, "--root", tmp_path)
        assert run.exit_code == 0 and "in sync" in run.stdout, run.output
    assert (tmp_path / "AGENTS.md").is_symlink() and (tmp_path / "CLAUDE.md").read_text() == "# Rules\n"


def test_claude_md_linked_elsewhere_is_refused(tmp_path, cli):
    (tmp_path / "AGENTS.md").write_text("# Rules\n")
    (tmp_path / "shared.md").write_text("Shared rules.\n")
    os.symlink("shared.md", tmp_path / "CLAUDE.md")
    run = cli("sync", "agents", "--root", tmp_path)
    assert run.exit_code == 2 and run.stderr.count("\n") == 1
    assert "CLAUDE.md: is a link to shared.md; aios does not replace links" in run.stderr
    assert (tmp_path / "CLAUDE.md").is_symlink() and (tmp_path / "shared.md").read_text() == "Shared rules.\n"


def test_a_generated_agents_md_the_user_edited_needs_force(tmp_path, cli):
    (tmp_path / "CLAUDE.md").write_text("Claude rules.\n")
    assert cli("sync", "agents", "--from", "claude", "--root", tmp_path).exit_code == 0
    agents = tmp_path / "AGENTS.md"
    agents.write_text(agents.read_text() + "\nA rule I added here.\n")
    (tmp_path / "CLAUDE.md").write_text("Claude rules, changed.\n")
    before = snapshot(agents)
    run = cli("sync", "agents", "--root", tmp_path)
    assert run.exit_code == 2 and "AGENTS.md: changed by hand since aios generated it" in run.stderr
    assert snapshot(agents) == before
    forced = cli("sync", "agents", "--from", "claude", "--force", "--root", tmp_path)
    assert forced.exit_code == 0, forced.output
    [line] = [line for line in forced.stdout.splitlines() if line.startswith("backup")]
    assert Path(line.split(" -> ")[1]).read_bytes() == before[agents][0]
    assert "Claude rules, changed." in agents.read_text()


def test_hand_written_agents_md_is_backed_up_by_force(tmp_path, cli):
    (tmp_path / "CLAUDE.md").write_text("Claude rules.\n")
    (tmp_path / "AGENTS.md").write_text("Hand written.\n")
    run = cli("sync", "agents", "--from", "claude", "--force", "--root", tmp_path)
    assert run.exit_code == 0, run.output
    [line] = [line for line in run.stdout.splitlines() if line.startswith("backup")]
    assert Path(line.split(" -> ")[1]).read_text() == "Hand written.\n"


def test_memory_merge_keeps_the_users_bytes_and_line_endings(tmp_path, cli):
    from aios.portability.memory import Fact, merge_facts

    memory = tmp_path / "memory"
    memory.mkdir()
    mine = b"# Learned facts\r\n\r\n- Acme runs three sites. (source: manual, 2026-11-01)\r\nno newline at the end"
    (memory / "learned.md").write_bytes(mine)
    merge_facts(memory, [Fact(text="Buyers prefer phone calls.", skill="research-lead", source_run="r1")])
    data = (memory / "learned.md").read_bytes()
    assert data.startswith(mine + b"\r\n- Buyers prefer phone calls. (source: research-lead run r1, ")
    assert data.endswith(b")\r\n")
    run = cli("memory", "--root", tmp_path)
    assert run.exit_code == 0 and "Buyers prefer phone calls." in run.stdout


def test_memory_merge_writes_through_a_link_instead_of_replacing_it(tmp_path):
    from aios.portability.memory import Fact, merge_facts

    shared = tmp_path / "shared.md"
    shared.write_text("- Shared fact. (source: manual, 2026-11-01)\n")
    memory = tmp_path / "memory"
    memory.mkdir()
    os.symlink(shared, memory / "learned.md")
    merge_facts(memory, [Fact(text="New fact.", skill="s", source_run="r")])
    assert (memory / "learned.md").is_symlink()
    assert shared.read_text().startswith("- Shared fact. (source: manual, 2026-11-01)\n- New fact. (source: s run r, ")
