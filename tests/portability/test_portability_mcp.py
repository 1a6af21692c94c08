"""MCP config mapping: .mcp.json (Claude Code) <-> .codex/config.toml (Codex)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aios.errors import ConfigError
from aios.portability.mcp import (
    McpServer,
    Transport,
    looks_like_secret,
    read_claude,
    read_codex,
    server_from_claude,
    server_to_codex,
    sync_mcp,
    to_claude_json,
    to_codex_toml,
)

from .conftest import put, snapshot

# --------------------------------------------------------------------------- strategies

_SAFE = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789 -_./:@=", max_size=24)
_name = st.from_regex(r"[a-z][a-z0-9_-]{0,15}", fullmatch=True)
_var = st.from_regex(r"[A-Z][A-Z0-9_]{0,12}", fullmatch=True)
_literal_key = st.from_regex(r"[A-Z][A-Z0-9_]{0,12}", fullmatch=True)
_header = st.from_regex(r"X-[A-Za-z][A-Za-z0-9-]{0,12}", fullmatch=True)


@st.composite
def _literal_map(draw, keys):
    """A map of non-secret literal values (the only literals either tool may hold inline)."""
    pairs = draw(st.dictionaries(keys, _SAFE, max_size=4))
    return {k: v for k, v in pairs.items() if not looks_like_secret(k, v)}


@st.composite
def portable_servers(draw, codex_only: bool = False):
    """Neutral servers both tools can express (codex_only adds keys only Codex has)."""
    names = draw(st.lists(_name, unique=True, min_size=0, max_size=4))
    servers = []
    for name in names:
        if draw(st.booleans()):
            env = draw(_literal_map(_literal_key))
            passthrough = draw(st.lists(_var.filter(lambda v, env=env: v not in env), unique=True, max_size=3))
            server = McpServer(
                name=name,
                transport=Transport.stdio,
                command=draw(_SAFE.filter(str.strip)),
                args=draw(st.lists(_SAFE, max_size=4)),
                env=env,
                env_passthrough=passthrough,
            )
        else:
            headers = draw(_literal_map(_header))
            header_env = draw(st.dictionaries(_header.filter(lambda h, hs=headers: h not in hs), _var, max_size=3))
            server = McpServer(
                name=name,
                transport=Transport.http,
                url="https://" + draw(st.from_regex(r"[a-z]{1,10}\.example\.com(/[a-z]{0,8})?", fullmatch=True)),
                headers=headers,
                header_env=header_env,
                bearer_env=draw(st.none() | _var),
            )
        if codex_only:
            server.cwd = draw(st.none() | _SAFE)
            server.startup_timeout_sec = draw(st.none() | st.floats(0.5, 600, allow_nan=False))
            server.tool_timeout_sec = draw(st.none() | st.integers(1, 3600).map(float))
            server.enabled = draw(st.none() | st.booleans())
            server.enabled_tools = draw(st.none() | st.lists(_name, max_size=3))
            server.disabled_tools = draw(st.none() | st.lists(_name, max_size=3))
        servers.append(server)
    return servers


_FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- round trips


@_FAST
@given(portable_servers())
def test_neutral_to_claude_and_back_is_identity(servers):
    data, warnings, problems = to_claude_json(servers)
    assert warnings == [] and problems == []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ".mcp.json"
        path.write_text(json.dumps(data))
        _, back, _ = read_claude(path)
    assert list(back.values()) == servers


@_FAST
@given(portable_servers(codex_only=True))
def test_neutral_to_codex_and_back_is_identity(servers):
    text, warnings, problems = to_codex_toml(servers)
    assert warnings == [] and problems == []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.toml"
        path.write_text(text)
        _, back, _ = read_codex(path)
    assert list(back.values()) == servers


@settings(max_examples=25, deadline=None)
@given(portable_servers())
def test_claude_to_codex_to_claude_through_files(servers):
    """A full trip through both sync directions gives back the same servers."""
    data, _, _ = to_claude_json(servers)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".mcp.json").write_text(json.dumps(data))
        sync_mcp(root, "claude")
        assert not sync_mcp(root, "claude", check=True).drift
        (root / ".mcp.json").unlink()
        if servers:
            sync_mcp(root, "codex")
            _, back, _ = read_claude(root / ".mcp.json")
            assert list(back.values()) == servers


# --------------------------------------------------------------------------- realistic fixtures


def test_claude_to_codex_keeps_unrelated_toml_and_codex_only_keys(project):
    put(project, "claude/.mcp.json", ".mcp.json")
    toml_path = put(project, "codex/config.toml", ".codex/config.toml")
    result = sync_mcp(project, "claude", prune=True)
    assert result.written
    text = toml_path.read_text()
    doc = tomlkit.parse(text).unwrap()
    # unrelated keys, tables and comments survive
    assert doc["model"] == "gpt-5-codex" and doc["approval_policy"] == "on-request"
    assert doc["profiles"] == {"fast": {"model": "gpt-5-mini", "model_reasoning_effort": "low"}}
    assert doc["sandbox_workspace_write"] == {"network_access": False}
    assert "# Codex configuration for this project." in text
    assert "# The filesystem server: Codex-only settings below must survive a sync." in text
    assert text.index("model =") < text.index("[mcp_servers.filesystem]") < text.index("[profiles.fast]")
    # the mapped server: Claude's values, Codex-only keys kept
    fs = doc["mcp_servers"]["filesystem"]
    assert fs["args"] == ["-y", "@modelcontextprotocol/server-filesystem", "./knowledge"]
    assert fs["env"] == {"LOG_LEVEL": "info"} and fs["env_vars"] == ["GITHUB_TOKEN"]
    assert fs["cwd"] == "/srv/project" and fs["startup_timeout_sec"] == 20
    assert fs["enabled_tools"] == ["read_file", "list_directory"] and fs["scopes"] == ["read"]
    assert "# Codex-only" in text
    # references mapped to Codex's own mechanisms
    assert doc["mcp_servers"]["crm"] == {
        "url": "https://crm.example.com/mcp",
        "bearer_token_env_var": "CRM_TOKEN",
        "http_headers": {"X-Client": "aios"},
        "env_http_headers": {"X-Workspace": "CRM_WORKSPACE"},
    }
    # removed servers are removed; SSE cannot go to Codex
    assert "retired" not in doc["mcp_servers"] and "legacy-events" not in doc["mcp_servers"]
    assert "${" not in json.dumps(doc["mcp_servers"]["search"].get("env", {}))
    assert doc["mcp_servers"]["search"]["env_vars"] == ["SEARCH_REGION"]
    # a second run changes nothing and check agrees
    before = snapshot(toml_path)
    again = sync_mcp(project, "claude", prune=True)
    assert not again.written and not again.drift
    assert snapshot(toml_path) == before


def test_what_codex_cannot_express_is_reported(project):
    put(project, "claude/.mcp.json", ".mcp.json")
    result = sync_mcp(project, "claude", check=True)
    text = "\n".join(result.warnings)
    assert "legacy-events: Codex has no SSE transport" in text
    assert result.skipped == ["legacy-events"]
    assert "search: env SEARCH_REGION: Codex has no ${VAR:-default}" in text
    assert "search: env SEARCH_URL" in text and "cannot be expressed in Codex" in text
    assert "search: args uses ${...}" in text
    assert "crm: .mcp.json key 'timeout' has no Codex equivalent" in text
    assert not (project / ".codex" / "config.toml").exists()  # --check writes nothing


def test_codex_to_claude_maps_back_and_reports_codex_only_keys(project):
    put(project, "codex/servers.toml", ".codex/config.toml")
    result = sync_mcp(project, "codex")
    assert result.written
    claude_path = project / ".mcp.json"
    text = claude_path.read_text()
    assert text.startswith('{\n  "mcpServers": {\n    "docs": {\n      "type": "stdio",')
    data = json.loads(text)
    assert data["mcpServers"]["docs"] == {
        "type": "stdio",
        "command": "uvx",
        "args": ["docs-mcp"],
        "env": {"DOCS_LANG": "en", "DOCS_API_TOKEN": "${DOCS_API_TOKEN}"},
    }
    assert data["mcpServers"]["crm"] == {
        "type": "http",
        "url": "https://crm.example.com/mcp",
        "headers": {"X-Client": "aios", "X-Workspace": "${CRM_WORKSPACE}", "Authorization": "Bearer ${CRM_TOKEN}"},
    }
    warnings = "\n".join(result.warnings)
    for key in ("cwd", "tool_timeout_sec", "disabled_tools"):
        assert f"docs: Codex-only '{key}'" in warnings
    assert "crm: disabled in Codex" in warnings
    assert not sync_mcp(project, "codex", check=True).drift


def test_codex_to_claude_keeps_claude_only_keys_and_other_top_level_keys(project):
    put(project, "codex/servers.toml", ".codex/config.toml")
    (project / ".mcp.json").write_text(
        json.dumps({"mcpServers": {"crm": {"type": "http", "url": "https://old", "timeout": 30000}}, "note": "x"})
    )
    sync_mcp(project, "codex")
    data = json.loads((project / ".mcp.json").read_text())
    assert data["note"] == "x"
    assert data["mcpServers"]["crm"]["timeout"] == 30000
    assert data["mcpServers"]["crm"]["url"] == "https://crm.example.com/mcp"


def test_check_reports_one_line_per_server_and_writes_nothing(project, cli):
    put(project, "claude/.mcp.json", ".mcp.json")
    toml_path = put(project, "codex/config.toml", ".codex/config.toml")
    before = snapshot(toml_path)
    result = cli("sync", "mcp", "--check", "--prune", "--root", project)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "~ filesystem: differs in args, env, env_passthrough" in lines
    assert "+ crm: missing (http)" in lines
    assert "- retired: not in the source" in lines
    assert snapshot(toml_path) == before
    run = cli("sync", "mcp", "--prune", "--root", project)
    assert run.exit_code == 0 and "~ filesystem: updated args, env, env_passthrough" in run.stdout
    assert "wrote .codex/config.toml: 2 added, 1 updated, 1 removed" in run.stdout
    ok = cli("sync", "mcp", "--check", "--root", project)
    assert ok.exit_code == 0 and "in sync" in ok.stdout


def test_removing_every_server_drops_the_mcp_servers_table(project):
    (project / ".mcp.json").write_text('{"mcpServers": {}}')
    toml_path = put(project, "codex/config.toml", ".codex/config.toml")
    sync_mcp(project, "claude", prune=True)
    doc = tomlkit.parse(toml_path.read_text()).unwrap()
    assert "mcp_servers" not in doc and doc["profiles"]["fast"]["model"] == "gpt-5-mini"


def test_new_codex_file_is_created(tmp_path):
    put(tmp_path, "claude/.mcp.json", ".mcp.json")
    sync_mcp(tmp_path, "claude")
    doc = tomlkit.parse((tmp_path / ".codex" / "config.toml").read_text()).unwrap()
    assert set(doc["mcp_servers"]) == {"filesystem", "crm", "search"}


def test_the_repository_example_files_are_in_sync():
    repo = Path(__file__).resolve().parents[2]
    assert not sync_mcp(repo, "claude", check=True).drift
    assert not sync_mcp(repo, "codex", check=True).drift


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("API_KEY", "abc", True),
        ("GITHUB_TOKEN", "whatever", True),
        ("DB_PASSWORD", "hunter2", True),
        ("Authorization", "Bearer abcdefgh12345678", True),
        ("OPENAI", "sk-proj-abcdefghijklmnopqrstuvwx", True),
        ("SLACK", "xoxb-1234567890-abcdefghij", True),
        ("ANY", "AKIAABCDEFGHIJKLMNOP", True),
        ("ANY", "a8f5f167f44f4964e6c998dee827110c7a1b2c3d", True),
        ("GITHUB_TOKEN", "${GITHUB_TOKEN}", False),
        ("API_KEY", "", False),
        ("LOG_LEVEL", "info", False),
        ("NODE_ENV", "production", False),
        ("TENANT", "123e4567-e89b-12d3-a456-426614174000", False),
        ("X-Client", "aios", False),
    ],
)
def test_looks_like_secret(name, value, secret):
    assert looks_like_secret(name, value) is secret


def test_literal_secret_in_mcp_json_is_refused(project, cli):
    (project / ".mcp.json").write_text(
        json.dumps(
            {
                "mcpServers": {
                    "gh": {"command": "gh-mcp", "env": {"GITHUB_TOKEN": "ghp_abcdefghijklmnopqrstuvwxyz0123", "LOG": "info"}},
                    "crm": {"type": "http", "url": "https://crm", "headers": {"Authorization": "Bearer s3cr3t-value-123"}},
                }
            }
        )
    )
    result = sync_mcp(project, "claude")
    assert len(result.problems) == 2 and not result.written
    assert "gh: env GITHUB_TOKEN holds a literal secret" in result.problems[0]
    assert not (project / ".codex" / "config.toml").exists()  # a sync with a problem writes nothing
    run = cli("sync", "mcp", "--root", project)
    assert run.exit_code == 1 and "problem: gh: env GITHUB_TOKEN" in run.stderr


def test_literal_secret_in_codex_toml_is_refused(project):
    (project / ".codex" / "config.toml").write_text(
        '[mcp_servers.crm]\nurl = "https://crm"\nhttp_headers = { Authorization = "Bearer abcdef123456", X-Api-Key = "k1" }\n'
        '[mcp_servers.db]\ncommand = "db-mcp"\nenv = { DB_PASSWORD = "hunter2" }\n'
    )
    result = sync_mcp(project, "codex")
    assert len(result.problems) == 3 and not result.written
    assert not (project / ".mcp.json").exists()


# --------------------------------------------------------------------------- malformed files


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("broken/trailing-comma.mcp.json", ".mcp.json: not valid JSON (line 3"),
        ("broken/args-not-list.mcp.json", ".mcp.json: mcpServers.fs.args: must be a list of strings"),
        ("broken/no-transport.mcp.json", ".mcp.json: mcpServers.fs: needs a command (stdio) or a url"),
        ("broken/servers-not-object.mcp.json", ".mcp.json: mcpServers: must be an object"),
    ],
)
def test_malformed_mcp_json_is_one_line_and_writes_nothing(project, cli, fixture, message):
    put(project, fixture, ".mcp.json")
    toml_path = put(project, "codex/config.toml", ".codex/config.toml")
    before = snapshot(project / ".mcp.json", toml_path)
    with pytest.raises(ConfigError) as err:
        sync_mcp(project, "claude")
    assert message in str(err.value) and "\n" not in str(err.value)
    run = cli("sync", "mcp", "--root", project)
    assert run.exit_code == 2
    assert run.stderr.count("\n") == 1 and message in run.stderr and "Traceback" not in run.stderr
    # the other direction refuses too: the target must be readable before anything is written
    assert cli("sync", "mcp", "--from", "codex", "--root", project).exit_code == 2
    assert snapshot(project / ".mcp.json", toml_path) == before


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("broken/bad-syntax.toml", "config.toml: not valid TOML"),
        ("broken/no-transport.toml", "config.toml: mcp_servers.fs: needs a command (stdio) or a url"),
        ("broken/env-not-string.toml", "config.toml: mcp_servers.fs.env: must map names to strings"),
    ],
)
def test_malformed_config_toml_is_one_line_and_writes_nothing(project, cli, fixture, message):
    put(project, "claude/.mcp.json", ".mcp.json")
    toml_path = put(project, fixture, ".codex/config.toml")
    before = snapshot(project / ".mcp.json", toml_path)
    for source in ("claude", "codex"):
        with pytest.raises(ConfigError) as err:
            sync_mcp(project, source)
        assert message in str(err.value) and "\n" not in str(err.value)
        run = cli("sync", "mcp", "--from", source, "--root", project)
        assert run.exit_code == 2 and run.stderr.count("\n") == 1 and message in run.stderr
    assert snapshot(project / ".mcp.json", toml_path) == before


def test_missing_source_is_a_config_error(project, cli):
    run = cli("sync", "mcp", "--root", project)
    assert run.exit_code == 2 and ".mcp.json: file not found" in run.stderr
    assert cli("sync", "mcp", "--from", "codex", "--root", project).exit_code == 2


def test_claude_shapes():
    path = Path(".mcp.json")
    server, warnings = server_from_claude("x", {"url": "https://x"}, path)
    assert server.transport is Transport.http and "treated as http" in warnings[0]
    with pytest.raises(ConfigError, match="has both command and url"):
        server_from_claude("x", {"url": "https://x", "command": "y"}, path)
    with pytest.raises(ConfigError, match="'ws' is not stdio, http or sse"):
        server_from_claude("x", {"type": "ws", "url": "wss://x"}, path)
    server, _ = server_from_claude("x", {"type": "http", "url": "u", "headers": {"Authorization": "${TOKEN}"}}, path)
    assert server.header_env == {"Authorization": "TOKEN"} and server.bearer_env is None
    entry, _, _ = server_to_codex(server)
    assert entry["env_http_headers"] == {"Authorization": "TOKEN"}
    renamed, _ = server_from_claude("x", {"command": "c", "env": {"A": "${B}"}}, path)
    entry, warnings, _ = server_to_codex(renamed)
    assert "env" not in entry and "cannot be expressed in Codex" in warnings[0]
    bad_name, _ = server_from_claude("my server", {"command": "c"}, path)
    entry, warnings, _ = server_to_codex(bad_name)
    assert entry is None and "letters, digits" in warnings[0]


def test_codex_to_claude_keeps_servers_codex_cannot_express(project):
    put(project, "claude/.mcp.json", ".mcp.json")
    sync_mcp(project, "claude")
    result = sync_mcp(project, "codex")
    data = json.loads((project / ".mcp.json").read_text())
    assert data["mcpServers"]["legacy-events"] == {"type": "sse", "url": "https://events.example.com/sse"}
    assert "legacy-events" in result.skipped
    assert any("legacy-events: Claude-only server" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("name", "secret"),
    [("api_token.txt", True), ("client_secret.json", True), ("id_rsa", True), ("deploy.key", True),
     ("apiKey", True), ("X-Auth", True), ("SSH_KEYS", True),
     ("monkey.md", False), ("author.md", False), ("KEYCLOAK_URL", False), ("notes.md", False)],
)
def test_one_detector_judges_names_for_files_env_and_headers(name, secret):
    """Export (file names) and MCP sync (env and header names) share aios.portability.secrets."""
    assert looks_like_secret(name) is secret
    assert looks_like_secret(name, "plain") is secret
